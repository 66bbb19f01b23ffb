#!/bin/sh
# HEALTHCHECK: healthy only when both halves answer: the nested dockerd on its unix socket, and
# Jenkins over HTTP on JENKINS_HTTP_PORT and JENKINS_HTTP_LISTEN_ADDRESS (honouring a --prefix in
# JENKINS_OPTS). Jenkins answers 503 while it loads; any 5xx or no answer is unhealthy, anything
# else means it serves requests.
set -eu

if ! curl -fsS --max-time 3 --unix-socket /var/run/docker.sock http://localhost/_ping >/dev/null 2>&1; then
    echo "nested dockerd does not answer on /var/run/docker.sock"
    exit 1
fi

prefix=""
for opt in ${JENKINS_OPTS:-}; do
    case "$opt" in --prefix=*) prefix=${opt#--prefix=} ;; esac
done
host=${JENKINS_HTTP_LISTEN_ADDRESS:-127.0.0.1}
[ "$host" != 0.0.0.0 ] || host=127.0.0.1
url="http://$host:${JENKINS_HTTP_PORT:-8080}${prefix%/}/login"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$url" 2>/dev/null) || true
case "$code" in
    [234]??) exit 0 ;;
    *) echo "Jenkins is not ready at $url (HTTP ${code:-no answer})"; exit 1 ;;
esac
