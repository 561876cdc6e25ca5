// Package camsim simulates IP cameras for tests and the demo: an RTSP
// server (gortsplib) that loops committed H.264/H.265 clips in real time
// with continuous timestamps, with switches for faults.
//
// It owns nothing of the product's state and must never be imported by
// production packages other than the demo wiring.
package camsim
