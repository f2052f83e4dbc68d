package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// serveRaw answers on ln without net/http: the least an HTTP/1.1 server
// in Go can spend on a request (a goroutine per connection, one read and
// one write per request, no header map, no context, no URL parsing). It
// says what an HTTP server of our own could buy in scenario 6, where the
// net/http floor sits at the target. It answers a blob HEAD or GET, POST
// and PUT with floor.serve's statuses and header keys, and nothing more: no
// body is kept (it is not for scenario 1), only Content-Length bodies are
// taken, Connection: close is not heeded.
func serveRaw(ln net.Listener) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			_ = rawConn(c)
		}()
	}
}

// rawConn serves the requests of one connection until it ends or sends
// what this responder does not take (a chunked body, a line over 4 KiB).
func rawConn(c net.Conn) error {
	br := bufio.NewReaderSize(c, 4096)
	bw := bufio.NewWriterSize(c, 4096)
	var blob [1024]byte
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		method, rest, ok1 := bytes.Cut(line, []byte(" "))
		target, _, ok2 := bytes.Cut(rest, []byte(" "))
		if !ok1 || !ok2 {
			return errors.New("malformed request line")
		}
		// Reading the header lines may overwrite line: take what is needed
		// of it first.
		m := string(method)
		blobReq := (m == http.MethodGet || m == http.MethodHead) && bytes.Contains(target, []byte("/blobs/sha"))
		var digest string
		if blobReq {
			digest = string(target[bytes.LastIndexByte(target, '/')+1:])
		}
		bodyLen, chunked, err := rawHeaders(br)
		if err != nil {
			return err
		}
		if chunked {
			_, _ = bw.WriteString("HTTP/1.1 501 Not Implemented\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
			return bw.Flush()
		}
		if _, err := io.CopyN(io.Discard, br, bodyLen); err != nil {
			return err
		}

		status, length := "200 OK", "0"
		switch {
		case m == http.MethodPost:
			status = "202 Accepted"
		case m == http.MethodPut:
			status = "201 Created"
		case blobReq:
			length = size[0]
		}
		// Appended piece by piece: a concatenation would allocate.
		w := bw.AvailableBuffer()
		w = append(w, "HTTP/1.1 "...)
		w = append(w, status...)
		w = append(w, "\r\nContent-Length: "...)
		w = append(w, length...)
		w = append(w, "\r\nDate: "...)
		w = time.Now().UTC().AppendFormat(w, http.TimeFormat)
		w = append(w, rawCommon...)
		w = append(w, rand.Text()...)
		if m == http.MethodPost {
			w = append(w, "\r\nLocation: "+uploadPath...)
			w = append(w, rand.Text()...)
		}
		if blobReq {
			w = append(w, rawBlob...)
			w = append(w, digest...)
			w = append(w, "\r\nEtag: \""...)
			w = append(w, digest...)
			w = append(w, '"')
		}
		w = append(w, "\r\n\r\n"...)
		if m == http.MethodGet && blobReq {
			w = append(w, blob[:]...)
		}
		if _, err := bw.Write(w); err != nil {
			return err
		}
		// Pipelined requests go out in one write.
		if br.Buffered() == 0 {
			if err := bw.Flush(); err != nil {
				return err
			}
		}
	}
}

// The header lines the raw answer shares with floor.serve's, from the same
// values, joined once; each ends where the request's own value follows.
var (
	rawCommon = "\r\nDocker-Distribution-Api-Version: " + version[0] + "\r\nX-Content-Type-Options: " + nosniff[0] + "\r\nX-Request-Id: "
	rawBlob   = "\r\nAccept-Ranges: " + ranges[0] + "\r\nCache-Control: " + forever[0] + "\r\nContent-Type: " + octets[0] + "\r\nDocker-Content-Digest: "
)

// rawHeaders reads a request's header lines and returns its body's length
// and whether the body is chunked.
func rawHeaders(br *bufio.Reader) (bodyLen int64, chunked bool, err error) {
	for {
		h, err := br.ReadSlice('\n')
		if err != nil {
			return 0, false, err
		}
		h = bytes.TrimRight(h, "\r\n")
		if len(h) == 0 {
			return bodyLen, chunked, nil
		}
		k, v, ok := bytes.Cut(h, []byte(":"))
		if !ok {
			return 0, false, errors.New("malformed header line")
		}
		v = bytes.TrimSpace(v)
		switch {
		case bytes.EqualFold(k, []byte("Content-Length")):
			if bodyLen, err = strconv.ParseInt(string(v), 10, 64); err != nil || bodyLen < 0 {
				return 0, false, errors.New("bad Content-Length")
			}
		case bytes.EqualFold(k, []byte("Transfer-Encoding")):
			chunked = true
		}
	}
}
