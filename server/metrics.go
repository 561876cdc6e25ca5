package server

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tianyan/vms/streaming"
)

// streamCollector reads the hub at scrape time, so the hot path keeps no
// Prometheus state. Only points with a running stream get labelled series.
type streamCollector struct {
	hub *streaming.Hub
	rtc *streaming.WebRTC

	sources, readers, bytesIn, framesIn, dropped, sessions *prometheus.Desc
}

func newStreamCollector(hub *streaming.Hub, rtc *streaming.WebRTC) *streamCollector {
	return &streamCollector{
		hub:      hub,
		rtc:      rtc,
		sources:  prometheus.NewDesc("tianyan_sources", "Point sources by state (starting, live, waiting_source).", []string{"state"}, nil),
		readers:  prometheus.NewDesc("tianyan_point_readers", "Readers (WebRTC and RTSP) of a point.", []string{"point"}, nil),
		bytesIn:  prometheus.NewDesc("tianyan_point_bytes_in_total", "Media bytes received from a point's source.", []string{"point"}, nil),
		framesIn: prometheus.NewDesc("tianyan_point_frames_in_total", "Video frames received from a point's source.", []string{"point"}, nil),
		dropped:  prometheus.NewDesc("tianyan_point_frames_dropped_total", "Units dropped for slow readers of a point.", []string{"point"}, nil),
		sessions: prometheus.NewDesc("tianyan_webrtc_sessions", "Live WebRTC (WHEP) sessions.", nil, nil),
	}
}

func (c *streamCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.sources, c.readers, c.bytesIn, c.framesIn, c.dropped, c.sessions} {
		ch <- d
	}
}

func (c *streamCollector) Collect(ch chan<- prometheus.Metric) {
	states := map[string]int{streaming.StateStarting: 0, streaming.StateLive: 0, streaming.StateWaiting: 0}
	for _, st := range c.hub.AllStats() {
		states[st.State]++
		ch <- prometheus.MustNewConstMetric(c.readers, prometheus.GaugeValue, float64(st.Readers), st.PointID)
		ch <- prometheus.MustNewConstMetric(c.bytesIn, prometheus.CounterValue, float64(st.BytesIn), st.PointID)
		ch <- prometheus.MustNewConstMetric(c.framesIn, prometheus.CounterValue, float64(st.FramesIn), st.PointID)
		ch <- prometheus.MustNewConstMetric(c.dropped, prometheus.CounterValue, float64(st.FramesDropped), st.PointID)
	}
	for s, n := range states {
		ch <- prometheus.MustNewConstMetric(c.sources, prometheus.GaugeValue, float64(n), s)
	}
	ch <- prometheus.MustNewConstMetric(c.sessions, prometheus.GaugeValue, float64(c.rtc.SessionCount()))
}
