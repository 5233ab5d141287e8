package service

import "runtime/debug"

// version is stamped at link time: -ldflags "-X github.com/metricpipe/metricpipe/shared/service.version=v1.2.3".
// It is never written at run time.
var version string

// Version reports the build's version: the link-time stamp, else the module
// version or VCS revision recorded by the Go toolchain, else "dev".
func Version() string {
	if version != "" {
		return version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			return "dev-" + s.Value[:12]
		}
	}
	return "dev"
}
