package gitserver

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
)

// SSHServer serves the same bare repositories over SSH (git-upload-pack and
// git-receive-pack), accepting only one client public key, so that tests
// can exercise SSH key credentials end to end.
type SSHServer struct {
	root    string
	lis     net.Listener
	hostKey ssh.Signer
	wg      sync.WaitGroup
}

// StartSSH serves root on a free loopback port for clients holding the key
// whose public half is authorized.
func StartSSH(root string, authorized ssh.PublicKey) (*SSHServer, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, err
	}
	cfg := &ssh.ServerConfig{PublicKeyCallback: func(_ ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
		if string(k.Marshal()) == string(authorized.Marshal()) {
			return nil, nil
		}
		return nil, errors.New("key not authorized")
	}}
	cfg.AddHostKey(signer)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &SSHServer{root: root, lis: lis, hostKey: signer}
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.serve(c, cfg)
			}()
		}
	}()
	return s, nil
}

// URL returns the ssh:// clone URL of repository name.
func (s *SSHServer) URL(name string) string {
	return fmt.Sprintf("ssh://git@%s/%s.git", s.lis.Addr(), name)
}

// KnownHostsLine returns the known_hosts line for this server.
func (s *SSHServer) KnownHostsLine() string {
	host, port, _ := net.SplitHostPort(s.lis.Addr().String())
	return fmt.Sprintf("[%s]:%s %s", host, port, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.hostKey.PublicKey()))))
}

// Close stops accepting and waits for open sessions.
func (s *SSHServer) Close() error {
	err := s.lis.Close()
	s.wg.Wait()
	return err
}

func (s *SSHServer) serve(c net.Conn, cfg *ssh.ServerConfig) {
	defer c.Close()
	_, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		return
	}
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.UnknownChannelType, "only sessions")
			continue
		}
		ch, in, err := nc.Accept()
		if err != nil {
			return
		}
		go s.session(ch, in)
	}
}

func (s *SSHServer) session(ch ssh.Channel, in <-chan *ssh.Request) {
	defer ch.Close()
	for req := range in {
		if req.Type != "exec" || len(req.Payload) < 4 {
			_ = req.Reply(false, nil)
			continue
		}
		n := binary.BigEndian.Uint32(req.Payload)
		cmdline := string(req.Payload[4 : 4+n])
		verb, arg, _ := strings.Cut(cmdline, " ")
		if verb != "git-upload-pack" && verb != "git-receive-pack" {
			_ = req.Reply(false, nil)
			return
		}
		path := filepath.Join(s.root, filepath.Clean("/"+strings.Trim(arg, "'\"")))
		_ = req.Reply(true, nil)
		cmd := exec.Command("git", strings.TrimPrefix(verb, "git-"), path)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = ch, ch, ch.Stderr()
		code := 0
		if err := cmd.Run(); err != nil {
			code = 1
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			}
		}
		status := make([]byte, 4)
		binary.BigEndian.PutUint32(status, uint32(code))
		_, _ = ch.SendRequest("exit-status", false, status)
		_, _ = io.Copy(io.Discard, ch)
		return
	}
}
