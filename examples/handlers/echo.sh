#!/bin/sh
# A longrun process handler (protocol 1) in plain POSIX sh, without jq: completes with its input
# echoed back as {"echo": input}. See docs/process-protocol.md.
#
# The start line puts "input" last (the protocol promises it), so the input is everything after
# the first `"input":`, minus the closing brace of the start line.
read -r start
input=${start#*\"input\":}
input=${input%\}}
echo '{"type":"progress","percent":50,"message":"echoing"}'
printf '{"type":"complete","output":{"echo":%s}}\n' "$input"
