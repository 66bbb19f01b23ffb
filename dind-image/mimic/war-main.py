"""`java -jar jenkins.war` of the mimic base: starts the dindjobs stand-in where Jenkins would.

Takes what jenkins.war takes from jenkins.sh: system properties (`-Dname=value`, passed on by
the mimic's `java` in JAVA_SYSTEM_PROPERTIES) and Jenkins' own options: --httpPort, --httpListenAddress
(default: every address, as Jenkins), --prefix is refused, others are warned about and ignored.
JENKINS_HOME comes from the environment (or -DJENKINS_HOME), Configuration as Code from
-Dcasc.jenkins.config or CASC_JENKINS_CONFIG, as the JCasC plugin reads them.
"""
import os
import sys

from dindjobs.standin.cli import main

props = dict(line.partition("=")[::2] for line in os.environ.pop("JAVA_SYSTEM_PROPERTIES", "").splitlines())
options = sys.argv[1:]
home = props.get("JENKINS_HOME") or os.environ.get("JENKINS_HOME") or os.path.expanduser("~/.jenkins")
standin = ["--home", home, "--host", "0.0.0.0", "--port", "8080"]
for option in options:
    name, _, value = option.partition("=")
    if name == "--httpPort":
        standin += ["--port", value]
    elif name == "--httpListenAddress":
        standin += ["--host", value]
    elif name == "--prefix":
        sys.exit("jenkins.war (dindjobs mimic): --prefix is not supported by the stand-in")
    else:
        print(f"jenkins.war (dindjobs mimic): ignoring {name}", file=sys.stderr)
casc = props.get("casc.jenkins.config") or os.environ.get("CASC_JENKINS_CONFIG")
if casc:
    standin += ["--casc", casc]
if props.get("jenkins.install.runSetupWizard") != "false":
    print("jenkins.war (dindjobs mimic): the stand-in has no setup wizard", file=sys.stderr)
sys.exit(main(standin))
