# Sourced by the per-hit benches (trace_bench.sh, inprocess_bench.sh): each
# mode is a function m_MODE that runs once and leaves the target's
# `loop_ns N` line in $work/err, and what the tool delivered and reported
# lost in $work/delivered and $work/lost. Every mode runs once per round,
# REPEATS rounds interleaved, so that a slow minute of a shared machine
# hits every mode alike; the fastest run of each is kept.

# Per mode: the fastest loop (ns), what that run delivered and lost, and
# the losses of every round ("0/12/0").
declare -A BEST DELIVERED LOST LOST_ALL

run_rounds() { # MODE...
    local round mode ns
    for round in $(seq "$REPEATS"); do
        for mode in "$@"; do
            rm -f "$work/delivered" "$work/lost"
            "m_$mode" || { echo "$mode failed:"; cat "$work/err"; exit 1; }
            LOST_ALL[$mode]="${LOST_ALL[$mode]:-}${LOST_ALL[$mode]:+/}$(cat "$work/lost" 2>/dev/null || echo -)"
            ns=$(grep -ao 'loop_ns [0-9]*' "$work/err" | head -1 | awk '{print $2}')
            [[ -n $ns ]] || { echo "$mode: no loop_ns:"; cat "$work/err"; exit 1; }
            if [[ -z ${BEST[$mode]:-} || $ns -lt ${BEST[$mode]} ]]; then
                BEST[$mode]=$ns
                DELIVERED[$mode]=$(cat "$work/delivered" 2>/dev/null || echo -)
                LOST[$mode]=$(cat "$work/lost" 2>/dev/null || echo -)
            fi
        done
        echo "# round $round done"
    done
}

per_hit() { # MODE BASE_MODE: ns per hit above the base mode's loop
    python3 -c "print(f'{max(0, (${BEST[$1]} - ${BEST[$2]}) / $HITS):.1f}')"
}

ratio() { # A B: A / B as "1.23x"
    python3 -c "print(f'{$1 / $2:.2f}x' if $2 > 0 else 'n/a')"
}

verdict() { # VALUE OP LIMIT: whether the goal VALUE OP LIMIT is met
    python3 -c "print('goal met' if $1 $2 $3 else 'GOAL MISSED')"
}
