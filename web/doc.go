// Package web is Tianyan's HTTP face: the JSON API (gin), the WHEP
// endpoint and the embedded browser UI. It authenticates callers, asks
// permissions for every decision and calls the domain packages; it holds no
// domain state of its own beyond request throttles.
//
// No domain package may import web.
package web
