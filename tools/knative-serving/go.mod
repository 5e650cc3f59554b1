// The module root only: tools/install-tools.sh builds with -modfile=<knative.dev/serving version>.mod.
module knawd.dev/tools/knative-serving

go 1.26.0
