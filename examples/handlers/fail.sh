#!/bin/sh
# A longrun process handler (protocol 1) that always fails: it reads the start line, reports
# progress once, and ends with a `fail` outcome. See docs/process-protocol.md.
read -r start
echo '{"type":"progress","percent":10,"message":"about to fail"}'
echo "fail.sh: failing on purpose" >&2
echo '{"type":"fail","code":"demo_failure","message":"this handler always fails, on purpose"}'
