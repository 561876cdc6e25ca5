package media

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// maxResync is how many bytes a framing reader skips looking for the next
// packet before it gives up on the connection.
const maxResync = 64 << 10

// errFraming is returned when a TCP stream holds no RTP packet where one
// should be, and none could be found after it.
var errFraming = errors.New("media: RFC 4571 framing lost")

// frameReader reads RTP packets framed by a 16-bit length (RFC 4571). A
// frame that does not hold an RTP version 2 header is taken for lost
// framing (a device that wrote a partial packet, or junk): the reader
// then skips byte by byte to the next place where a length is followed by
// a plausible RTP header.
//
// Once a packet was read, a frame is only taken if its header has that
// packet's payload type and SSRC: payload bytes often look like a length
// and a version 2 header, a whole header seldom does.
type frameReader struct {
	r       *bufio.Reader
	buf     []byte
	learned bool
	pt      byte
	ssrc    [4]byte
}

func newFrameReader(r io.Reader) *frameReader {
	return &frameReader{r: bufio.NewReaderSize(r, 64<<10), buf: make([]byte, 65535)}
}

// next returns the next packet; the slice is reused by the next call.
func (f *frameReader) next() ([]byte, error) {
	skipped := 0
	for {
		h, err := f.r.Peek(14)
		if err != nil {
			if errors.Is(err, io.EOF) && len(h) > 0 {
				if len(h) >= 2 && h[0] == 0 && h[1] == 0 {
					f.r.Discard(2)
					continue
				}
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		n := int(h[0])<<8 | int(h[1])
		if f.plausible(n, h[2:]) {
			if _, err := f.r.Discard(2); err != nil {
				return nil, err
			}
			if _, err := io.ReadFull(f.r, f.buf[:n]); err != nil {
				if errors.Is(err, io.EOF) {
					err = io.ErrUnexpectedEOF
				}
				return nil, err
			}
			if !f.learned {
				f.learned = true
				f.pt = f.buf[1] & 0x7f
				copy(f.ssrc[:], f.buf[8:12])
			}
			return f.buf[:n], nil
		}
		if n == 0 {
			// An empty frame is legal and carries nothing.
			if _, err := f.r.Discard(2); err != nil {
				return nil, err
			}
			continue
		}
		if skipped >= maxResync {
			return nil, fmt.Errorf("%w: %d bytes without a packet", errFraming, skipped)
		}
		if _, err := f.r.Discard(1); err != nil {
			return nil, err
		}
		skipped++
	}
}

// plausible says whether a frame of length n whose first bytes are h (12
// of them) holds the stream's next RTP packet.
func (f *frameReader) plausible(n int, h []byte) bool {
	if n < 12 || h[0]&0xc0 != 0x80 {
		return false
	}
	if !f.learned {
		return true
	}
	return h[1]&0x7f == f.pt && [4]byte(h[8:12]) == f.ssrc
}

// appendFrame appends pkt with its RFC 4571 length.
func appendFrame(b []byte, pkt []byte) []byte {
	return append(append(b, byte(len(pkt)>>8), byte(len(pkt))), pkt...)
}
