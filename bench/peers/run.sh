#!/usr/bin/env bash
# Runs RCAEval's own BARO and NSigma (Python, RCAEval 1.8.1 from PyPI) and rootcause's rankers on
# the same cases and prints one table. See bench/peers/README.md.
#
#   bench/peers/run.sh <dataset-path> [--format nezha|rcaeval|sim] [--work DIR] [--length MIN]
#                      [--peers-only] [--min-agreement SHARE]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

# Exact versions, checked together on Python 3.12.1: RCAEval's own dependency list pulls in torch
# and much more that baro/nsigma never import, so it is installed with --no-deps and these
# (what its baro/nsigma code paths import, and their dependencies) are pinned instead.
RCAEVAL_PIN="rcaeval==1.8.1"
PINS=(
  numpy==1.26.4 pandas==2.2.3 scikit-learn==1.9.1 scipy==1.17.1 networkx==3.7 tqdm==4.70.1
  requests==2.34.2 python-dateutil==4.0.0 pytz==2026.6 tzdata==2026.6
  joblib==1.6.0 threadpoolctl==3.8.0 narwhals==2.29.0 cloudpickle==3.1.3
  certifi==2026.10.19.post1 charset-normalizer==3.5.2 idna==3.20 urllib3==2.8.0
)

die() { printf '\nrun.sh: error: %s\n' "$*" >&2; exit 1; }
usage() { sed -n '2,7s/^# \{0,1\}//p' "$0"; }

dataset="" format="" work="" length=10 peers_only=0 min_agreement=""
while (($#)); do
  case "$1" in
    --format) format="${2:?--format needs a value}"; shift 2 ;;
    --format=*) format="${1#*=}"; shift ;;
    --work) work="${2:?--work needs a value}"; shift 2 ;;
    --work=*) work="${1#*=}"; shift ;;
    --length) length="${2:?--length needs a value}"; shift 2 ;;
    --length=*) length="${1#*=}"; shift ;;
    --peers-only) peers_only=1; shift ;;
    --min-agreement) min_agreement="${2:?--min-agreement needs a value}"; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    -*) usage >&2; die "unknown option $1" ;;
    *) [[ -z $dataset ]] || die "one dataset path only (got $dataset and $1)"; dataset="$1"; shift ;;
  esac
done
[[ -n $dataset ]] || { usage >&2; exit 2; }
[[ -e $dataset ]] || die "no such dataset path: $dataset"
dataset="$(cd "$dataset" && pwd)"
if [[ -z $format ]]; then
  if [[ -n "$(find "$dataset" -name inject_time.txt -print -quit)" ]]; then
    format=rcaeval
  else
    die "cannot tell the format of $dataset: give --format nezha|rcaeval|sim"
  fi
fi
case "$format" in nezha | rcaeval | sim) ;; *) die "unknown --format $format (nezha|rcaeval|sim)" ;; esac
[[ $format == rcaeval || $peers_only == 0 ]] || die "--peers-only needs an RCAEval-format dataset"
work="${work:-$repo/target/peers/$(basename "$dataset")-$format}"
mkdir -p "$work"
work="$(cd "$work" && pwd)"
venv="${ROOTCAUSE_PEERS_VENV:-$HOME/.cache/rootcause/peers-venv}"

# ---------------------------------------------------------------- Python 3.12 virtualenv
find_python312() {
  local candidate
  for candidate in "$(command -v python3.12 || true)" "$HOME"/.pyenv/versions/3.12*/bin/python3.12; do
    [[ -n $candidate && -x $candidate ]] || continue
    # a pyenv shim exists even when 3.12 is not selected: ask the interpreter itself
    if "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' 2>/dev/null; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

wanted="$RCAEVAL_PIN ${PINS[*]}"
if [[ ! -x $venv/bin/python || "$(cat "$venv/.rootcause-pins" 2>/dev/null)" != "$wanted" ]]; then
  python312="$(find_python312)" ||
    die "Python 3.12 not found (on PATH or under ~/.pyenv/versions/3.12*): RCAEval's baro/nsigma need it"
  echo "== creating $venv with $python312 ($wanted)" >&2
  [[ -x $venv/bin/python ]] || "$python312" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps "$RCAEVAL_PIN"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "${PINS[@]}"
  printf '%s' "$wanted" >"$venv/.rootcause-pins"
fi
"$venv/bin/python" -c 'import sys; assert sys.version_info[:2] == (3, 12), sys.version
from RCAEval.e2e import baro, nsigma' ||
  die "the virtualenv $venv cannot import RCAEval.e2e.baro/nsigma: delete it and rerun"

# ---------------------------------------------------------------- rootcause binary
bin="${ROOTCAUSE_BIN:-$repo/target/release/rootcause}"
if ((peers_only == 0)); then
  if [[ -z ${ROOTCAUSE_BIN:-} ]]; then
    echo "== cargo build --release -p rootcause-cli" >&2
    (cd "$repo" && cargo build --release -p rootcause-cli)
  fi
  [[ -x $bin ]] || die "no rootcause binary at $bin"
  "$bin" eval --help 2>/dev/null | grep -q -- '--ranker' ||
    die "'$bin eval --ranker ...' does not exist yet: rootcause eval is needed to score our rankers (use --peers-only on an RCAEval-format dataset to run only RCAEval)"
  if [[ $format != rcaeval ]]; then
    "$bin" datasets convert --help >/dev/null 2>&1 ||
      die "'$bin datasets convert' does not exist yet: it is needed to turn a $format dataset into RCAEval's format"
  fi
fi

# ---------------------------------------------------------------- convert
if [[ $format == rcaeval ]]; then
  cases="$dataset"
else
  cases="$work/rcaeval"
  rm -rf -- "$cases"
  echo "== converting $dataset ($format) to $cases" >&2
  "$bin" datasets convert --to rcaeval --format "$format" "$dataset" --out "$cases"
fi

# ---------------------------------------------------------------- RCAEval's BARO and NSigma
echo "== RCAEval $RCAEVAL_PIN baro, nsigma on $cases" >&2
peers_status=0
"$venv/bin/python" "$here/rcaeval_peers.py" "$cases" --length "$length" --json >"$work/peers.json" ||
  peers_status=$?
((peers_status == 0 || peers_status == 1)) || die "rcaeval_peers.py crashed (status $peers_status)"

# ---------------------------------------------------------------- rootcause on the same cases
ours=()
if ((peers_only == 0)); then
  for ranker in baro nsigma; do
    echo "== rootcause eval --ranker $ranker on $cases" >&2
    "$bin" eval --format rcaeval "$cases" --ranker "$ranker" --json \
      --predictions "$work/ours-$ranker.predictions.jsonl" >"$work/ours-$ranker.json"
    ours+=(--ours "rcaeval=$work/ours-$ranker.json")
    # per-case rankings, for the share of cases whose top-1 agrees with RCAEval's
    ours+=(--predictions "$ranker=$work/ours-$ranker.predictions.jsonl")
  done
  echo "== rootcause eval (default ranker: cold-start) on $dataset ($format)" >&2
  "$bin" eval --format "$format" "$dataset" --json >"$work/ours-default.json"
  ours+=(--ours "$format=$work/ours-default.json")
  echo "== rootcause eval --ranker learned --cv 5 on $dataset ($format)" >&2
  "$bin" eval --format "$format" "$dataset" --ranker learned --cv 5 --json >"$work/ours-learned.json"
  ours+=(--ours "$format=$work/ours-learned.json")
fi

echo
gate=()
[[ -z $min_agreement ]] || gate=(--min-agreement "$min_agreement")
table_status=0
"$venv/bin/python" "$here/rcaeval_peers.py" table --peers "$work/peers.json" "${ours[@]}" "${gate[@]}" ||
  table_status=$?
echo "(outputs in $work)"
((table_status == 0)) ||
  die "rootcause's reference rankers disagree with RCAEval's on the top-1 service more than --min-agreement allows"
if ((peers_status != 0)); then
  die "RCAEval failed on some cases (listed above): its rows leave those cases out"
fi
