package streaming

import "strings"

// Profiles of a point: the main stream, and the optional low-bitrate sub
// stream for phones and wall tiles. Each is its own hub path.
const (
	ProfileMain = "main"
	ProfileSub  = "sub"
)

// PathKey is the hub path of a point's profile: "{point}" for main,
// "{point}/sub" for sub. RTSP clients use the same string as URL path.
func PathKey(pointID, profile string) string {
	if profile == ProfileSub {
		return pointID + "/" + ProfileSub
	}
	return pointID
}

// SplitPathKey is the inverse of PathKey.
func SplitPathKey(key string) (pointID, profile string) {
	if id, ok := strings.CutSuffix(key, "/"+ProfileSub); ok {
		return id, ProfileSub
	}
	return key, ProfileMain
}
