package main
import (
 _ "k8s.io/api/core/v1"
 _ "k8s.io/client-go/kubernetes"
 _ "k8s.io/client-go/tools/leaderelection"
 _ "github.com/valyala/fasthttp"
 _ "github.com/json-iterator/go"
 _ "github.com/spf13/cobra"
 _ "github.com/prometheus/client_golang/prometheus"
 _ "sigs.k8s.io/yaml"
 _ "github.com/fsnotify/fsnotify"
)
func main(){}
