// Command tidegate is a Kubernetes Ingress controller driving nginx and Lua.
package main

import (
	"os"

	"github.com/tidegate/tidegate/pkg/cli"
)

func main() { os.Exit(cli.Execute()) }
