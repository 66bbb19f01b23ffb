#!/usr/bin/env bash
# jenkins.sh of the offline base: runs the Jenkins stand-in (python3 -m dindjobs.standin) where
# jenkins.war is not available. Same contract as jenkins/jenkins's jenkins.sh: no arguments or
# `--options` start "Jenkins", any other command runs instead. The admin user comes from
# JENKINS_ADMIN_ID and the password file JENKINS_ADMIN_PASSWORD_FILE, as with the real image;
# with CASC_JENKINS_CONFIG set (the wrapper image sets it) the stand-in reads its security from
# that JCasC file instead. Plugins installed into $REF/plugins at build time (jenkins-plugin-cli)
# are copied into $JENKINS_HOME/plugins when missing there, as the real jenkins.sh does.
set -euo pipefail

if [ $# -gt 0 ] && [[ "$1" != --* ]]; then
    exec "$@"
fi

: "${JENKINS_HOME:=/var/jenkins_home}"
: "${JENKINS_HTTP_PORT:=8080}"
: "${JENKINS_ADMIN_ID:=admin}"
: "${JENKINS_ADMIN_PASSWORD_FILE:=/run/secrets/jenkins-admin-password}"
export JENKINS_HOME JENKINS_ADMIN_ID JENKINS_ADMIN_PASSWORD_FILE

if [ -d "${REF:-/usr/share/jenkins/ref}/plugins" ]; then
    mkdir -p "$JENKINS_HOME/plugins"
    cp -Rn "${REF:-/usr/share/jenkins/ref}/plugins/." "$JENKINS_HOME/plugins/"
fi

# jenkins.war listens on every address by default; JENKINS_HTTP_LISTEN_ADDRESS narrows it.
exec python3 -m dindjobs.standin --home "$JENKINS_HOME" --port "$JENKINS_HTTP_PORT" \
    --host "${JENKINS_HTTP_LISTEN_ADDRESS:-0.0.0.0}" "$@"
