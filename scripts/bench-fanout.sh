#!/usr/bin/env bash
# WHEP fan-out benchmark, end to end on loopback:
#   build vms and whepbench, start `vms serve` on fixed high ports, log in,
#   create a publish point, publish the 720p clip with ffmpeg over RTSP, and
#   run whepbench against the point with the server's PID.
#
# usage: scripts/bench-fanout.sh [whepbench flags...]
#   defaults: -readers 100 -join 20 -hold 20s (later flags win)
#   env: HTTP_PORT (18080) RTSP_PORT (18554) WEBRTC_PORT (18189)
#        CLIP (camsim/clips/h264_1280x720_25.h264) KEEP=1 keeps the temp dir
set -euo pipefail

cd "$(dirname "$0")/.."
root=$(pwd)
HTTP_PORT=${HTTP_PORT:-18080}
RTSP_PORT=${RTSP_PORT:-18554}
WEBRTC_PORT=${WEBRTC_PORT:-18189}
CLIP=${CLIP:-camsim/clips/h264_1280x720_25.h264}
POINT=bench
PASSWORD="bench-$RANDOM$RANDOM"
base="http://127.0.0.1:$HTTP_PORT"

for tool in go ffmpeg curl; do
	command -v "$tool" >/dev/null || { echo "bench-fanout: $tool is required" >&2; exit 1; }
done
port_busy() { # tcp or udp, port
	ss -Hln "--$1" "sport = :$2" 2>/dev/null | grep -q .
}
for p in "tcp $HTTP_PORT" "tcp $RTSP_PORT" "udp $WEBRTC_PORT" "tcp $WEBRTC_PORT"; do
	if port_busy $p; then
		echo "bench-fanout: port ${p#* } (${p% *}) is in use; set HTTP_PORT/RTSP_PORT/WEBRTC_PORT" >&2
		exit 1
	fi
done

tmp=$(mktemp -d -t tianyan-bench.XXXXXX)
vms_pid='' ffmpeg_pid=''
cleanup() {
	local rc=$?
	set +e
	trap - EXIT INT TERM
	for pid in $ffmpeg_pid $vms_pid; do
		kill "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	if [[ ${KEEP:-} == 1 ]]; then echo "bench-fanout: logs kept in $tmp" >&2; else rm -rf "$tmp"; fi
	exit "$rc"
}
trap cleanup EXIT INT TERM

echo "bench-fanout: building into $tmp" >&2
go build -o "$tmp/vms" ./cmd/vms
go build -o "$tmp/whepbench" ./cmd/whepbench

VMS_ADMIN_PASSWORD=$PASSWORD "$tmp/vms" serve --data "$tmp/data" \
	--http "127.0.0.1:$HTTP_PORT" --rtsp "127.0.0.1:$RTSP_PORT" --webrtc "127.0.0.1:$WEBRTC_PORT" --sip "" \
	--ice-interfaces lo --max-views-per-user 100000 --max-views-per-ip 100000 >"$tmp/vms.log" 2>&1 &
vms_pid=$!

for _ in $(seq 100); do
	curl -fs -o /dev/null "$base/" && break
	kill -0 "$vms_pid" 2>/dev/null || { cat "$tmp/vms.log" >&2; exit 1; }
	sleep 0.1
done

json_field() { sed -n 's/.*"'"$1"'":"\([^"]*\)".*/\1/p'; }
token=$(curl -fsS "$base/api/v1/auth/login" -H 'Content-Type: application/json' \
	-d "{\"username\":\"admin\",\"password\":\"$PASSWORD\"}" | json_field token)
[[ -n $token ]] || { echo "bench-fanout: login failed" >&2; exit 1; }
auth=(-H "Authorization: Bearer $token")
curl -fsS -o /dev/null "${auth[@]}" "$base/api/v1/points" -H 'Content-Type: application/json' \
	-d "{\"id\":\"$POINT\",\"name\":\"Fan-out bench\",\"source\":{\"type\":\"publish\"}}"
key=$(curl -fsS "${auth[@]}" "$base/api/v1/me/stream-key" | json_field stream_key)
[[ -n $key ]] || { echo "bench-fanout: no stream key" >&2; exit 1; }

# ffmpeg (5.1, Debian 12) cannot -stream_loop a raw .h264 file: the raw
# demuxer has no timestamps or index, "Seek to start failed" and ffmpeg
# stops after one pass (8 s). Remux once into Matroska (no re-encode), which
# loops with continuous timestamps.
ffmpeg -nostdin -loglevel error -y -framerate 25 -i "$CLIP" -c copy "$tmp/clip.mkv"
ffmpeg -nostdin -loglevel warning -re -stream_loop -1 -i "$tmp/clip.mkv" -c copy \
	-f rtsp -rtsp_transport tcp "rtsp://admin:$key@127.0.0.1:$RTSP_PORT/$POINT" >"$tmp/ffmpeg.log" 2>&1 &
ffmpeg_pid=$!

# Wait until the point is live and has seen a keyframe.
live=''
for _ in $(seq 150); do
	st=$(curl -fs "${auth[@]}" "$base/api/v1/points/$POINT/stats" || true)
	if [[ $st == *'"state":"live"'* && $st == *'"keyframe_age_ms":'[0-9]* ]]; then live=1; break; fi
	kill -0 "$ffmpeg_pid" 2>/dev/null || { cat "$tmp/ffmpeg.log" >&2; exit 1; }
	sleep 0.1
done
[[ -n $live ]] || { echo "bench-fanout: point never went live: $st" >&2; cat "$tmp/ffmpeg.log" >&2; exit 1; }

echo "bench-fanout: vms pid $vms_pid, publishing $CLIP to $POINT" >&2
"$tmp/whepbench" -url "$base/api/v1/points/$POINT/whep" -token "$token" -pid "$vms_pid" -iface lo \
	-readers 100 -join 20 -hold 20s "$@"
