"""`java -jar /opt/jenkins-plugin-manager.jar` of the mimic base: the stand-in's plugins.txt
checker and placeholder installer (see dindjobs.standin.plugins), with its exit status."""
import sys

from dindjobs.standin.plugins import main

sys.exit(main())
