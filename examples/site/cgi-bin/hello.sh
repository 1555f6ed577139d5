#!/bin/sh
# A minimal CGI script: headers, a blank line, then the body.
printf 'Content-Type: text/plain; charset=utf-8\r\n\r\n'
printf 'Hello from a CGI shell script.\n'
printf 'QUERY_STRING=%s\n' "$QUERY_STRING"
