// knative-config-check reads config-deployment data the way Knative Serving itself does, with its own parser
// (knative.dev/serving/pkg/deployment.NewConfigFromMap, what its controller and its config webhook call), so
// the tests can prove that what the installer writes into `runtime-class-name` is accepted, and what it means:
// which RuntimeClass a revision with given labels gets (Config.PodRuntimeClassName).
//
// Input (stdin, JSON): {"data": {<config-deployment data>}, "labels": [{<revision labels>}, ...]}.
// Output (stdout, JSON): {"error": "<Knative's message>"} when Knative refuses the data, else
// {"runtimeClassNames": {<name>: {"selector": {...}}}, "picks": [<RuntimeClass name or null, per label set>]}.
// Exit status 0 either way; 2 when stdin is not that JSON.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"knative.dev/serving/pkg/deployment"
)

type input struct {
	Data   map[string]string   `json:"data"`
	Labels []map[string]string `json:"labels"`
}

type result struct {
	Error             string                                              `json:"error,omitempty"`
	RuntimeClassNames map[string]deployment.RuntimeClassNameLabelSelector `json:"runtimeClassNames,omitempty"`
	Picks             []*string                                           `json:"picks,omitempty"`
}


func main() {
	var in input
	if err := json.NewDecoder(os.Stdin).Decode(&in); err != nil {
		fmt.Fprintf(os.Stderr, "knative-config-check: stdin is not the expected JSON: %v\n", err)
		os.Exit(2)
	}
	out := result{}
	if cfg, err := deployment.NewConfigFromMap(in.Data); err != nil {
		out.Error = err.Error()
	} else {
		out.RuntimeClassNames = cfg.RuntimeClassNames
		out.Picks = make([]*string, 0, len(in.Labels))
		for _, labels := range in.Labels {
			out.Picks = append(out.Picks, cfg.PodRuntimeClassName(labels))
		}
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fmt.Fprintf(os.Stderr, "knative-config-check: %v\n", err)
		os.Exit(1)
	}
}
