package renderproc

import (
	"encoding/binary"
	"fmt"
	"io"
)

// Frame status bytes of an answer.
const (
	statusOK    byte = 0 // payload is the handler's answer
	statusError byte = 1 // payload is an error message
)

// writeFrame writes a frame: the payload's length (4 bytes, big endian),
// a status byte and the payload.
func writeFrame(w io.Writer, status byte, payload []byte) error {
	var hdr [5]byte
	binary.BigEndian.PutUint32(hdr[:4], uint32(len(payload)))
	hdr[4] = status
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	_, err := w.Write(payload)
	return err
}

// errTooLarge is returned by readFrame for a frame over its limit.
type errTooLarge struct{ size, max int64 }

func (e errTooLarge) Error() string {
	return fmt.Sprintf("%d bytes, over the limit of %d", e.size, e.max)
}

// readFrame reads one frame of at most max payload bytes.
func readFrame(r io.Reader, max int64) (byte, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := int64(binary.BigEndian.Uint32(hdr[:4]))
	if n > max {
		return 0, nil, errTooLarge{n, max}
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return 0, nil, err
	}
	return hdr[4], buf, nil
}
