package cli

import (
	"context"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/tidegate/tidegate/pkg/echo"
)

func newEcho() *cobra.Command {
	var listen, name string
	cmd := &cobra.Command{
		Use:   "echo --listen ADDR --name NAME",
		Short: "Run a small backend that answers with JSON describing the request",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return echo.Serve(ctx, listen, name)
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:9000", "address to listen on")
	cmd.Flags().StringVar(&name, "name", "echo", "name reported in every answer")
	return cmd
}
