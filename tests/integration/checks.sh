# Sourced by the integration tests after their set-up: from here on a failed condition is
# counted, not fatal. The sourcing script defines q (one query, its rows unaligned) before
# it calls eq, and ends with: echo "$passed passed, $failed failed"; [ "$failed" = 0 ]
set +e
passed=0
failed=0
check() { # check NAME CONDITION-EXIT-STATUS
  if [ "$2" = 0 ]; then passed=$((passed + 1)); echo "ok   - $1"; else failed=$((failed + 1)); echo "FAIL - $1"; fi
}
eq() { # eq NAME QUERY EXPECTED
  local got
  got=$(q "$2")
  [ "$got" = "$3" ]
  local s=$?
  [ $s = 0 ] || printf '     query: %s\n     got:      %s\n     expected: %s\n' "$2" "$got" "$3"
  check "$1" $s
}
