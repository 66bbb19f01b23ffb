#!/bin/bash
# jenkins.sh of the mimic base, after the documented behaviour of jenkins/jenkins's:
#   1. copy every file of $REF into $JENKINS_HOME (copy_reference_file, jenkins-support);
#   2. no arguments, or a first argument starting with "--": run Jenkins, i.e.
#      java -Duser.home=$JENKINS_HOME $JAVA_OPTS $JENKINS_JAVA_OPTS -jar $JENKINS_WAR $JENKINS_OPTS "$@"
#      (the option variables split shell-style by xargs, never eval'd), adding the agent port
#      and ExitLifecycle properties unless given;
#   3. anything else: exec it.
set -euo pipefail

: "${JENKINS_WAR:=/usr/share/jenkins/jenkins.war}"
: "${JENKINS_HOME:=/var/jenkins_home}"
: "${REF:=/usr/share/jenkins/ref}"
: "${COPY_REFERENCE_FILE_LOG:=$JENKINS_HOME/copy_reference_file.log}"
export JENKINS_HOME REF COPY_REFERENCE_FILE_LOG

touch "$COPY_REFERENCE_FILE_LOG" || { echo "Can not write to $COPY_REFERENCE_FILE_LOG. Wrong volume permissions?" >&2; exit 1; }
echo "--- Copying files at $(date)" >>"$COPY_REFERENCE_FILE_LOG"
# shellcheck disable=SC2016  # expanded by the inner bash
find "$REF" \( -type f -o -type l \) -exec bash -c '. /usr/local/bin/jenkins-support; for f; do copy_reference_file "$f"; done' _ {} +

if [[ $# -lt 1 ]] || [[ "$1" == "--"* ]]; then
    java_opts=()
    while IFS= read -r -d '' item; do java_opts+=("$item"); done < <(
        [[ -n "${JAVA_OPTS:-}" ]] && xargs printf '%s\0' <<<"$JAVA_OPTS"
        [[ -n "${JENKINS_JAVA_OPTS:-}" ]] && xargs printf '%s\0' <<<"$JENKINS_JAVA_OPTS"
        true)
    if [[ "${java_opts[*]}" != *"-Djenkins.model.Jenkins.slaveAgentPort="* ]]; then
        java_opts+=("-Djenkins.model.Jenkins.slaveAgentPort=${JENKINS_SLAVE_AGENT_PORT:-50000}")
    fi
    if [[ "${JAVA_OPTS:-}" != *"-Dhudson.lifecycle"* ]]; then
        java_opts+=("-Dhudson.lifecycle=hudson.lifecycle.ExitLifecycle")
    fi
    jenkins_opts=()
    while IFS= read -r -d '' item; do jenkins_opts+=("$item"); done < <(
        [[ -n "${JENKINS_OPTS:-}" ]] && xargs printf '%s\0' <<<"$JENKINS_OPTS"
        true)
    exec java -Duser.home="$JENKINS_HOME" "${java_opts[@]}" -jar "$JENKINS_WAR" "${jenkins_opts[@]}" "$@"
fi

exec "$@"
