#!/bin/sh
# A POSIX shell CGI script: says hello and shows what the request was.
# Request data arrives in variables; printf '%s' keeps it plain data.
printf 'Content-Type: text/plain; charset=utf-8\r\n\r\n'
printf 'Hello from a shell script!\n\n'
printf 'REQUEST_METHOD=%s\n' "$REQUEST_METHOD"
printf 'SCRIPT_NAME=%s\n' "$SCRIPT_NAME"
printf 'PATH_INFO=%s\n' "$PATH_INFO"
printf 'QUERY_STRING=%s\n' "$QUERY_STRING"
printf 'REMOTE_ADDR=%s\n' "$REMOTE_ADDR"
printf 'SERVER_PORT=%s\n' "$SERVER_PORT"
