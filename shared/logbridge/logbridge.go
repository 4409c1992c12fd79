// Package logbridge routes the logs of the libraries Flotilla embeds,
// client-go (klog) and gRPC, through the process's hclog.Logger, so that
// every line has one format (--log-json included) and one level filter.
package logbridge

import (
	"fmt"
	"os"
	"strings"

	"github.com/go-logr/logr"
	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/grpclog"
	"k8s.io/klog/v2"
)

// Install sends klog's and gRPC's logs to log (named "client-go" and
// "grpc"). It changes process-wide state: call it once, from main.
func Install(log hclog.Logger) {
	klog.SetLogger(logr.New(&klogSink{log: log.Named("client-go")}))
	grpclog.SetLoggerV2(&grpcLogger{log: log.Named("grpc")})
}

// klogSink is a logr.LogSink over hclog. klog's verbosity levels above 0
// are debug and trace detail.
type klogSink struct {
	log hclog.Logger
}

func (s *klogSink) Init(logr.RuntimeInfo) {}

func (s *klogSink) Enabled(level int) bool {
	switch {
	case level <= 0:
		return s.log.IsInfo()
	case level <= 2:
		return s.log.IsDebug()
	default:
		return s.log.IsTrace()
	}
}

func (s *klogSink) Info(level int, msg string, kv ...any) {
	switch {
	case level <= 0:
		s.log.Info(msg, kv...)
	case level <= 2:
		s.log.Debug(msg, kv...)
	default:
		s.log.Trace(msg, kv...)
	}
}

func (s *klogSink) Error(err error, msg string, kv ...any) {
	s.log.Error(msg, append([]any{"error", err}, kv...)...)
}

func (s *klogSink) WithValues(kv ...any) logr.LogSink {
	return &klogSink{log: s.log.With(kv...)}
}

func (s *klogSink) WithName(name string) logr.LogSink {
	return &klogSink{log: s.log.Named(name)}
}

// grpcLogger is a grpclog.LoggerV2 over hclog. gRPC logs much at info
// level about connections; it goes to debug, warnings and errors stay.
type grpcLogger struct {
	log hclog.Logger
}

func line(args ...any) string { return strings.TrimSuffix(fmt.Sprintln(args...), "\n") }

func (g *grpcLogger) Info(args ...any)                    { g.log.Debug(fmt.Sprint(args...)) }
func (g *grpcLogger) Infoln(args ...any)                  { g.log.Debug(line(args...)) }
func (g *grpcLogger) Infof(format string, args ...any)    { g.log.Debug(fmt.Sprintf(format, args...)) }
func (g *grpcLogger) Warning(args ...any)                 { g.log.Warn(fmt.Sprint(args...)) }
func (g *grpcLogger) Warningln(args ...any)               { g.log.Warn(line(args...)) }
func (g *grpcLogger) Warningf(format string, args ...any) { g.log.Warn(fmt.Sprintf(format, args...)) }
func (g *grpcLogger) Error(args ...any)                   { g.log.Error(fmt.Sprint(args...)) }
func (g *grpcLogger) Errorln(args ...any)                 { g.log.Error(line(args...)) }
func (g *grpcLogger) Errorf(format string, args ...any)   { g.log.Error(fmt.Sprintf(format, args...)) }
func (g *grpcLogger) Fatal(args ...any)                   { g.log.Error(fmt.Sprint(args...)); os.Exit(1) }
func (g *grpcLogger) Fatalln(args ...any)                 { g.Fatal(line(args...)) }
func (g *grpcLogger) Fatalf(format string, args ...any)   { g.Fatal(fmt.Sprintf(format, args...)) }

// V reports whether gRPC's verbosity level l is logged: level 0 at debug,
// higher levels at trace.
func (g *grpcLogger) V(l int) bool {
	if l <= 0 {
		return g.log.IsDebug()
	}
	return g.log.IsTrace()
}
