#!/usr/bin/env bash
# Runs every capture: LIB VENV SCENARIO... (fake_provider.py on :18090 and otlp_receiver.py on :14319 must be up)
set -u
here="$(cd "$(dirname "$0")" && pwd)"
run() {
  lib=$1; venv=$2; shift 2
  for scenario in "$@"; do
    echo "### $lib $scenario"
    timeout 120 "$venv/bin/python" "$here/capture.py" "$lib" "$scenario" 2>"${LOGDIR:-/tmp}/$lib.$scenario.stderr" | grep '^RESULT '
  done
}
OPENAI="openai_chat openai_chat_cached openai_chat_reasoning openai_stream_no_usage openai_stream_usage openai_error_then_ok"
ANTHROPIC="anthropic_messages anthropic_stream anthropic_stream_raw"
case "${1:-all}" in
  otel-openai-v2|all) run otel-openai-v2 /tmp/cap-otelv2 $OPENAI ;;&
  openllmetry|all) run openllmetry /tmp/cap-traceloop $OPENAI $ANTHROPIC ;;&
  openinference-langchain|all) run openinference-langchain /tmp/cap-langchain langchain_chat langchain_stream ;;&
  litellm|all) run litellm /tmp/cap-litellm litellm_openai_reasoning litellm_openai_cached litellm_openai_stream litellm_anthropic litellm_error_then_ok ;;&
  mlflow|all) run mlflow /tmp/cap-mlflow openai_chat_reasoning openai_stream_usage anthropic_messages ;;&
  mlflow-semconv|all) run mlflow-semconv /tmp/cap-mlflow openai_chat_reasoning openai_stream_usage anthropic_messages ;;&
  logfire|all) run logfire /tmp/cap-logfire openai_chat_reasoning openai_stream_usage openai_stream_no_usage ;;&
  openlit|all) run openlit /tmp/cap-openlit openai_chat_reasoning openai_stream_usage anthropic_messages anthropic_stream ;;&
  *) ;;
esac
