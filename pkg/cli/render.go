package cli

import (
	"errors"
	"fmt"
	"io"

	jsoniter "github.com/json-iterator/go"
	"github.com/spf13/cobra"

	"github.com/tidegate/tidegate/pkg/model"
	"github.com/tidegate/tidegate/pkg/nginx"
	"github.com/tidegate/tidegate/pkg/source/files"
)

func newRender() *cobra.Command {
	var f commonFlags
	var manifests string
	cmd := &cobra.Command{
		Use:   "render --manifests DIR",
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
			set := nginx.Settings{WorkDir: workdir, HTTPPort: f.httpPort, HTTPSPort: f.httpsPort, AccessLog: f.accessLog}
			snap, srcProblems := files.Load(manifests)
			m := model.Build(snap, f.opts)
			r, err := nginx.Render(m.Structure, set)
			if err != nil {
				return err
			}
			return printRender(cmd.OutOrStdout(), cmd.ErrOrStderr(), r, m, srcProblems)
		},
	}
	f.register(cmd.Flags())
	cmd.Flags().StringVar(&manifests, "manifests", "", "directory of YAML manifests")
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
