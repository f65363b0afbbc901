package cli

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"

	jsoniter "github.com/json-iterator/go"
	"github.com/spf13/cobra"

	"github.com/tidegate/tidegate/pkg/annotations"
	"github.com/tidegate/tidegate/pkg/model"
	"github.com/tidegate/tidegate/pkg/nginx"
	"github.com/tidegate/tidegate/pkg/source/files"
)

func newRender() *cobra.Command {
	var f commonFlags
	var manifests string
	var report bool
	cmd := &cobra.Command{
		Use:   "render --manifests DIR [--report]",
		Short: "Print the nginx.conf and the dynamic JSON for a directory of manifests; start nothing",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if manifests == "" {
				return errors.New("--manifests DIR is required")
			}
			workdir := f.workdir
			if workdir == "" {
				workdir = "/var/lib/tidegate"
			}
			workdir, err := filepath.Abs(workdir)
			if err != nil {
				return err
			}
			set := nginx.Settings{WorkDir: workdir, HTTPPort: f.httpPort, HTTPSPort: f.httpsPort, AccessLog: f.accessLog, ErrorLog: f.errorLog}
			_, set.OpenFiles, _ = nginx.RaiseOpenFiles() // worker_rlimit_nofile as local and controller render it
			snap, srcProblems := files.Load(manifests)
			f.opts.Targets = f.targets(true) // as tidegate local would serve them
			m := model.Build(snap, f.opts)
			if report {
				return printReport(cmd.OutOrStdout(), m, srcProblems)
			}
			r, err := nginx.Render(m.Structure, set)
			if err != nil {
				return err
			}
			return printRender(cmd.OutOrStdout(), cmd.ErrOrStderr(), r, m, srcProblems)
		},
	}
	f.register(cmd.Flags())
	cmd.Flags().StringVar(&manifests, "manifests", "", "directory of YAML manifests")
	cmd.Flags().BoolVar(&report, "report", false, "print the ingress-nginx compatibility report instead of the configuration")
	return cmd
}

func printRender(out, errOut io.Writer, r *nginx.Rendered, m *model.Model, srcProblems []model.Problem) error {
	if _, err := fmt.Fprintf(out, "# ---- nginx.conf (generation %s) ----\n%s", r.Generation, r.Conf); err != nil {
		return err
	}
	js, err := jsoniter.ConfigCompatibleWithStandardLibrary.MarshalIndent(m.Dynamic, "", "  ")
	if err != nil {
		return fmt.Errorf("encode dynamic configuration: %w", err)
	}
	if _, err := fmt.Fprintf(out, "# ---- dynamic configuration (pushed to Lua) ----\n%s\n", js); err != nil {
		return err
	}
	for _, p := range append(srcProblems, m.Problems...) {
		fmt.Fprintln(errOut, "problem:", p.String())
	}
	return nil
}

// printReport lists, per Ingress, each nginx.ingress.kubernetes.io/*
// annotation and what became of it, then every other problem.
func printReport(out io.Writer, m *model.Model, srcProblems []model.Problem) error {
	keys := make([]string, 0, len(m.Compat))
	for k := range m.Compat {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	counts := map[annotations.Status]int{}
	fmt.Fprintln(out, "ingress-nginx compatibility report")
	for _, k := range keys {
		fmt.Fprintf(out, "\nIngress %s\n", k)
		for _, e := range m.Compat[k] {
			counts[e.Status]++
			line := fmt.Sprintf("  %-24s %-48s", e.Status, e.Key)
			if e.Detail != "" {
				line += " " + e.Detail
			}
			fmt.Fprintln(out, strings.TrimRight(line, " "))
		}
	}
	var other []model.Problem
	for _, p := range append(srcProblems, m.Problems...) {
		if !strings.HasPrefix(p.Field, "metadata.annotations[") {
			other = append(other, p)
		}
	}
	if len(other) > 0 {
		fmt.Fprintln(out, "\nother problems")
		for _, p := range other {
			fmt.Fprintln(out, "  "+p.String())
		}
	}
	fmt.Fprintf(out, "\nsummary: %d applied, %d applied with a difference, %d unsupported, %d rejected, %d unknown\n",
		counts[annotations.Applied], counts[annotations.Different], counts[annotations.Unsupported], counts[annotations.Rejected], counts[annotations.Unknown])
	return nil
}
