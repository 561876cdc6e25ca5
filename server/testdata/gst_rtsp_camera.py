#!/usr/bin/env python3
"""A GStreamer RTSP camera for Tianyan's integration tests.

Serves a live x264 test pattern at rtsp://127.0.0.1:PORT/cam using
GstRtspServer (python3-gi + gir1.2-gst-rtsp-server-1.0). It is a camera
Tianyan's authors did not write, so its RTSP and RTP are an independent
implementation's.

Usage: gst_rtsp_camera.py PORT     (PORT 0 picks a free port)

Prints "ready PORT" on stdout once listening; exits on SIGTERM/SIGINT or
when its stdin (a pipe held by the test) is closed.
"""

import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

PIPELINE = (
    "( videotestsrc is-live=true "
    "! video/x-raw,width=640,height=360,framerate=25/1 "
    "! x264enc tune=zerolatency key-int-max=50 bframes=0 speed-preset=ultrafast "
    "! rtph264pay name=pay0 pt=96 )"
)


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: gst_rtsp_camera.py PORT", file=sys.stderr)
        return 2
    port = int(sys.argv[1])

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(port))

    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(PIPELINE)
    factory.set_shared(True)
    server.get_mount_points().add_factory("/cam", factory)

    if server.attach(None) == 0:
        print("cannot listen on 127.0.0.1:%d" % port, file=sys.stderr)
        return 1

    loop = GLib.MainLoop()

    # Ctrl-C and SIGTERM end the process at once (GLib's loop would
    # otherwise keep Python from running its own handlers).
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)

    # The test runner holds our stdin; when it goes away, so do we.
    def stdin_closed(_fd, _cond):
        loop.quit()
        return GLib.SOURCE_REMOVE

    GLib.io_add_watch(GLib.IOChannel.unix_new(sys.stdin.fileno()),
                      GLib.PRIORITY_DEFAULT,
                      GLib.IOCondition.HUP | GLib.IOCondition.ERR,
                      stdin_closed)

    print("ready %d" % server.get_bound_port(), flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
