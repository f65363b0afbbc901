package nginx

import (
	"fmt"

	"github.com/tidegate/tidegate/pkg/model"
)

// DefaultLogFormat is ingress-nginx's default log-format-upstream, field for
// field, with the Ingress ("namespace/name") that served the request
// appended: log parsers written for ingress-nginx keep working, and every
// line names the namespace, Ingress, Service and upstream address. It
// writes the variables behind ingress-nginx's names ($tidegate_backend for
// $proxy_upstream_name, $request_id for $req_id, and the always empty
// $proxy_alternative_upstream_name as nothing): the same text, without
// evaluating three maps per request. Custom formats can use the
// ingress-nginx names (maps in nginx.tmpl).
const DefaultLogFormat = `$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" $request_length $request_time [$tidegate_backend] [] $upstream_addr $upstream_response_length $upstream_response_time $upstream_status $request_id $tidegate_ingress`

// JSONLogFormat is the built-in JSON access log (log-format-json: "true"),
// one object per line, written with escape=json.
const JSONLogFormat = `{"time":"$time_iso8601","remote_addr":"$remote_addr","remote_user":"$remote_user",` +
	`"request_id":"$request_id","method":"$request_method","host":"$host","uri":"$request_uri",` +
	`"protocol":"$server_protocol","status":$status,"bytes_sent":$bytes_sent,"request_length":$request_length,` +
	`"request_time":$request_time,"referer":"$http_referer","user_agent":"$http_user_agent",` +
	`"namespace":"$namespace","ingress":"$ingress_name","service":"$service_name","service_port":"$service_port",` +
	`"backend":"$tidegate_backend","upstream_addr":"$upstream_addr","upstream_status":"$upstream_status",` +
	`"upstream_response_time":"$upstream_response_time","upstream_response_length":"$upstream_response_length"}`

// setAccessLog picks the access log format from the ConfigMap settings.
// A custom format was validated by the model (known variables, printable
// text); here it is only quoted.
func (v *view) setAccessLog(g model.Global) error {
	if g.DisableAccessLog {
		v.AccessLogOff = true
		return nil
	}
	format := DefaultLogFormat
	switch {
	case g.LogFormatJSON:
		format, v.LogEscape = JSONLogFormat, "escape=json "
	case g.LogFormatUpstream != "":
		format = g.LogFormatUpstream
		if g.LogFormatEscapeJSON {
			v.LogEscape = "escape=json "
		}
	}
	q, err := Quote(format)
	if err != nil {
		return fmt.Errorf("log-format-upstream: %w", err)
	}
	v.LogFormat = q
	return nil
}
