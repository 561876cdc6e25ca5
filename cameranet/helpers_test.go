package cameranet

import (
	"context"
	"net/http"
)

func newRequest(url string) (*http.Request, error) {
	return http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
}
