// Package cli holds tidegate's cobra commands; cmd/tidegate only calls
// Execute.
package cli

import (
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// Version is set at build time with -ldflags "-X ...cli.Version=v1.2.3".
var Version = "dev"

// Execute runs the command line and returns the process exit code.
func Execute() int {
	root := newRoot()
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "tidegate:", err)
		return 1
	}
	return 0
}

func newRoot() *cobra.Command {
	var logLevel, logFormat string
	root := &cobra.Command{
		Use:   "tidegate",
		Short: "A Kubernetes Ingress controller: nginx for traffic, Lua for everything that changes often",
		Long: `tidegate serves Kubernetes Ingress objects through nginx. Structural changes
(hosts, paths, TLS) re-render nginx.conf and reload; endpoints, weights and
certificate contents are pushed to Lua inside nginx and never reload.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return setupLogging(logLevel, logFormat)
		},
	}
	root.PersistentFlags().StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	root.PersistentFlags().StringVar(&logFormat, "log-format", "text", "text or json")
	root.AddCommand(newController(), newLocal(), newSupervise(), newRender(), newEcho(), newVersion())
	return root
}

func setupLogging(level, format string) error {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "text":
		slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, opts)))
	case "json":
		slog.SetDefault(slog.New(slog.NewJSONHandler(os.Stderr, opts)))
	default:
		return fmt.Errorf("--log-format %q: want text or json", format)
	}
	return nil
}

func newVersion() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), "tidegate", Version)
		},
	}
}
