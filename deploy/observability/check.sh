#!/usr/bin/env bash
# Checks the chain's alerts and Grafana dashboard with promtool, offline:
#   bash deploy/observability/check.sh
#
# 1. Renders the dev overlay and takes the PrometheusRule's spec (the one
#    source of the rules) and the dashboard's queries out of it
#    (deploy/cmd/promrules).
# 2. promtool check rules on both: rule syntax, and the PromQL of every
#    alert and every dashboard panel.
# 3. promtool test rules deploy/observability/alerts_test.yaml: each alert
#    fires where it should and stays quiet where it should.
# 4. Loosens or tightens each rule on purpose, one change at a time, and
#    requires step 3 to fail every time, so no alert goes untested.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."

# promtool from Debian's prometheus package; only if apt cannot install it,
# the pinned module from the Go module proxy (a few minutes to build).
promtool_module=github.com/prometheus/prometheus
promtool_version=v0.316.0
gobin=$(go env GOBIN)
gobin=${gobin:-$(go env GOPATH)/bin}

install_promtool() {
  local log
  log=$(mktemp)
  echo "check: installing promtool: apt-get install prometheus"
  apt_install() {
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      -o DPkg::Lock::Timeout=600 prometheus
  }
  # The package lists may be missing or stale on a new machine.
  if apt_install >"$log" 2>&1 || { apt-get update -q && apt_install; } >>"$log" 2>&1; then
    rm -f "$log"
    return
  fi
  tail -n 5 "$log" >&2
  rm -f "$log"
  echo "check: apt-get failed; building promtool $promtool_version from the Go module proxy"
  GOBIN=$gobin go install "$promtool_module/cmd/promtool@$promtool_version"
}

if command -v promtool >/dev/null; then
  promtool=$(command -v promtool)
elif [[ -x $gobin/promtool ]]; then
  promtool=$gobin/promtool
else
  install_promtool
  promtool=$(command -v promtool || echo "$gobin/promtool")
fi
echo "check: $("$promtool" --version 2>&1 | head -n 1)"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/promrules" ./deploy/cmd/promrules

# extract ROOT OUT: the rule files of ROOT's dev overlay, with the unit
# tests beside them.
extract() {
  mkdir -p "$2"
  "$work/promrules" -overlay "$1/overlays/dev" -out "$2" >/dev/null
  cp deploy/observability/alerts_test.yaml "$2/"
}

extract deploy "$work/shipped"
"$promtool" check rules "$work/shipped/alerts.rules.yaml" "$work/shipped/dashboards.rules.yaml"
(cd "$work/shipped" && "$promtool" test rules alerts_test.yaml)

# Each change below must make the unit tests of the alert it names fail:
# "ALERT: what" says what the change does and which test case catches it.
# Each row is WHAT FROM TO; FROM must occur exactly once
# in the rule files (the hand-written PrometheusRule and the one rendered
# from the chain's table), so a change to the rules that leaves a line here
# stale fails loudly instead of testing nothing. A mutant of the rendered
# file stands for a wrong row or a wrong template.
rules=(components/observability/prometheusrule.yaml components/observability/budget-alerts.yaml)
mutations=(
  "TrustchainTokenRefusalsHigh: threshold 20% -> 19% (b's 19.4% fires)"
  '> 0.2' '> 0.19'
  "TrustchainTokenRefusalsHigh: threshold 20% -> 21% (a's 20.6% goes quiet)"
  '> 0.2' '> 0.21'
  "TrustchainTokenRefusalsHigh: for 10m -> 9m (fires at 10m)"
  $'> 0.2\n      for: 10m' $'> 0.2\n      for: 9m'
  "TrustchainTokenRefusalsHigh: count requests without a token (c fires)"
  'sum by (namespace, role) (rate(trustchain_token_checks_total{result="rejected", reason!="missing"}[5m]))'
  'sum by (namespace, role) (rate(trustchain_token_checks_total{result="rejected"}[5m]))'
  "TrustchainJWKSRefreshFailing: window 15m -> 30m (a still fires at 37m)"
  '{result="error"}[15m]' '{result="error"}[30m]'
  "TrustchainJWKSRefreshFailing: count rate_limited as a failure (b fires)"
  '{result="error"}[15m]' '{result=~"error|rate_limited"}[15m]'
  "TrustchainJWKSRefreshFailing: ignore later successes (c fires)"
  '{result="ok"}[15m])) > 0' '{result="ok"}[15m])) > 1e9'
  "TrustchainUpstreamErrorsHigh: threshold 5% -> 4.5% (c's 4.8% fires)"
  $'> 0.05\n      for: 5m' $'> 0.045\n      for: 5m'
  "TrustchainUpstreamErrorsHigh: threshold 5% -> 6% (a's 5.7% goes quiet)"
  $'> 0.05\n      for: 5m' $'> 0.06\n      for: 5m'
  "TrustchainUpstreamErrorsHigh: for 5m -> 4m (fires at 5m)"
  $'> 0.05\n      for: 5m' $'> 0.05\n      for: 4m'
  "TrustchainUpstreamErrorsHigh: count canceled calls as errors (c fires)"
  '{error!~"none|canceled"}' '{error!="none"}'
  "TrustchainUpstreamErrorsHigh: leave out rejected (dev's a goes quiet)"
  '{error!~"none|canceled"}' '{error!~"none|canceled|rejected"}'
  "TrustchainHopOverBudget: A's budget 8s -> 6.5s (dev's a at 7s fires)"
  'route!="other"}[5m]))) > 8' 'route!="other"}[5m]))) > 6.5'
  "TrustchainHopOverBudget: A's budget 8s -> 9.5s (shop's a at 9s goes quiet)"
  'route!="other"}[5m]))) > 8' 'route!="other"}[5m]))) > 9.5'
  "TrustchainHopOverBudget: count route other (dev's a fires)"
  '{role="a", route!="other"}' '{role="a"}'
  "TrustchainHopOverBudget: for 10m -> 9m (fires at 10m)"
  $'> 8\n      for: 10m' $'> 8\n      for: 9m'
  "TrustchainHopOverBudget: C's budget 6s -> 4.5s (dev's c at 5s fires)"
  'route!="other"}[5m]))) > 6' 'route!="other"}[5m]))) > 4.5'
  "TrustchainHopOverBudget: C's budget 6s -> 7.5s (shop's c at 7s goes quiet)"
  'route!="other"}[5m]))) > 6' 'route!="other"}[5m]))) > 7.5'
  "TrustchainHopOverBudget: B's budget 3s -> 2.5s (dev's b at 2.9s fires)"
  'route!="other"}[5m]))) > 3' 'route!="other"}[5m]))) > 2.5'
  "TrustchainHopOverBudget: B's budget 3s -> 4s (shop's b at 3.5s goes quiet)"
  'route!="other"}[5m]))) > 3' 'route!="other"}[5m]))) > 4'
  "TrustchainDBQueryOverBudget: budget 3s -> 2.5s (insert at 2.9s fires)"
  '{role="b"}[5m]))) > 3' '{role="b"}[5m]))) > 2.5'
  "TrustchainDBQueryOverBudget: budget 3s -> 4s (select at 3.5s goes quiet)"
  '{role="b"}[5m]))) > 3' '{role="b"}[5m]))) > 4'
  "TrustchainDBQueryOverBudget: for 10m -> 9m (fires at 10m)"
  $'{role="b"}[5m]))) > 3\n      for: 10m' $'{role="b"}[5m]))) > 3\n      for: 9m'
  "TrustchainPodNotReady: for 5m -> 3m (b fires at 6m)"
  $'== 0\n      for: 5m' $'== 0\n      for: 3m'
  "TrustchainPodNotReady: any value counts as down (every pod fires)"
  '(trustchain_dependency_up) == 0' '(trustchain_dependency_up) <= 1'
  "TrustchainShedding: threshold 5% -> 3.5% (b's 4% fires)"
  $'[5m]))\n          > 0.05\n      for: 10m' $'[5m]))\n          > 0.035\n      for: 10m'
  "TrustchainShedding: threshold 5% -> 7% (a's 6% goes quiet)"
  $'[5m]))\n          > 0.05\n      for: 10m' $'[5m]))\n          > 0.07\n      for: 10m'
  "TrustchainShedding: for 10m -> 3m (c's burst fires)"
  $'> 0.05\n      for: 10m\n      labels:\n        severity: warning\n      annotations:\n        summary: \'Role {{ $labels.role }} sheds' $'> 0.05\n      for: 3m\n      labels:\n        severity: warning\n      annotations:\n        summary: \'Role {{ $labels.role }} sheds'
  "TrustchainSVIDExpiringSoon: a third -> 1/2.9 of the lifetime (c fires at 80m)"
  'trustchain_svid_not_before_timestamp_seconds) / 3' 'trustchain_svid_not_before_timestamp_seconds) / 2.9'
  "TrustchainSVIDExpiringSoon: a third -> 1/3.1 of the lifetime (c quiet at 81m)"
  'trustchain_svid_not_before_timestamp_seconds) / 3' 'trustchain_svid_not_before_timestamp_seconds) / 3.1'
)

# mutate TREE FROM TO: replace the one occurrence of FROM in TREE's rule
# files.
mutate() {
  local file content rest n total=0 target
  for file in "${rules[@]}"; do
    content=$(<"$1/$file")
    rest=${content//"$2"/}
    n=$(( (${#content} - ${#rest}) / ${#2} ))
    total=$((total + n))
    if [[ $n -gt 0 ]]; then
      target=$1/$file
    fi
  done
  if [[ $total -ne 1 ]]; then
    echo "check: $2 occurs $total times in ${rules[*]}, want once: update the mutations" >&2
    return 1
  fi
  content=$(<"$target")
  printf '%s\n' "${content/"$2"/"$3"}" >"$target"
}

caught=0
for ((i = 0; i < ${#mutations[@]}; i += 3)); do
  what=${mutations[i]}
  tree="$work/mutant"
  rm -rf "$tree"
  cp -r deploy "$tree"
  mutate "$tree" "${mutations[i + 1]}" "${mutations[i + 2]}"
  extract "$tree" "$tree/out"
  # A change that breaks the rule file would fail the tests for the wrong
  # reason.
  "$promtool" check rules "$tree/out/alerts.rules.yaml" >/dev/null
  if (cd "$tree/out" && "$promtool" test rules alerts_test.yaml) >"$work/mutant.log" 2>&1; then
    echo "check: the unit tests still pass after: $what" >&2
    exit 1
  fi
  if ! grep -q "alertname: ${what%%:*}," "$work/mutant.log"; then
    echo "check: the unit tests failed after \"$what\", but not on ${what%%:*}:" >&2
    cat "$work/mutant.log" >&2
    exit 1
  fi
  caught=$((caught + 1))
done
echo "check: the unit tests caught all $caught deliberate changes to the rules"
