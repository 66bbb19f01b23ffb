"""`dindjobs standin`: run the Jenkins stand-in in the foreground (same as `python3 -m dindjobs.standin`)."""

from __future__ import annotations

import logging

import click

from dindjobs.cli_support import exits_with


@click.command("standin")
@click.option("--home", required=True, type=click.Path(file_okay=False), help="Jenkins home directory.")
@click.option("--port", type=int, default=8080, show_default=True, help="HTTP port (0 picks a free one).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--startup-delay", type=float, default=0.0, metavar="S",
              help="Seconds of 503 'Jenkins is getting ready to work' after each start.")
@click.option("--users", "users_file", type=click.Path(dir_okay=False, exists=True), metavar="FILE",
              help="One name:password or name:password:apitoken per line. Default: JENKINS_ADMIN_ID "
                   "and the password in JENKINS_ADMIN_PASSWORD_FILE.")
@click.option("--quiet-period", type=float, default=5.0, show_default=True, metavar="S",
              help="Global quiet period of the build queue.")
@click.option("--executors", type=int, default=2, show_default=True, help="Build executors.")
@click.option("--anonymous-read", is_flag=True, help="Let anonymous users read (Overall/Read).")
@click.option("--root-url", metavar="URL", help="Configured Jenkins URL (default: none).")
@click.option("--casc", type=click.Path(exists=True), metavar="FILE", envvar="CASC_JENKINS_CONFIG",
              help="Configuration as Code file (e.g. dind-image/casc/jenkins.yaml): security, users, executors "
                   "and system message from it, as JCasC applies it. Default: $CASC_JENKINS_CONFIG.")
@click.option("--plugin-file", type=click.Path(dir_okay=False, exists=True), metavar="FILE",
              help="plugins.txt (e.g. dind-image/plugins.txt) to install into HOME/plugins first; the stand-in "
                   "loads the plugins HOME/plugins holds, as Jenkins does.")
@click.option("--fail-boot", is_flag=True, help="Test aid: behave like a Jenkins whose boot failed (500 everywhere).")
@exits_with
def command(home, port, host, startup_delay, users_file, quiet_period, executors, anonymous_read, root_url,
            casc, plugin_file, fail_boot) -> int:
    """Run a Jenkins stand-in until SIGTERM or Ctrl-C.

    It answers the REST API as Jenkins 2.580 would (what python-jenkins and jenkins-jobs use),
    keeps jobs and builds under --home in Jenkins' layout, and runs each job's shell steps with
    `sh -xe` in <home>/workspace/<job>: a way to try JJB jobs without a Jenkins. Logs go to stderr.
    """
    from dindjobs.standin.cli import serve

    logging.getLogger("dindjobs.standin").setLevel(logging.INFO)  # lifecycle lines, like Jenkins' log
    return serve(home, port=port, host=host, startup_delay=startup_delay, users_file=users_file,
                 quiet_period=quiet_period, executors=executors, anonymous_read=anonymous_read,
                 root_url=root_url, fail_boot=fail_boot, casc=casc, plugin_file=plugin_file)
