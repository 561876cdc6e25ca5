package server

import "github.com/tianyan/vms/gb28181"

// platformStatus says how our registration to the upstream platform id
// stands (the admin page's status column).
func (a *App) platformStatus(id string) gb28181.PlatformStatus {
	return gb28181.PlatformStatus{}
}
