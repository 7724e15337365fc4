#!/bin/sh
# Entrypoint of the registry stand-in, as the official registry:2 image's: a configuration file
# (*.yml, *.yaml) means `registry serve FILE`; a registry subcommand or option means `registry ...`;
# anything else runs as it is.
set -e

case $1 in
  *.yaml | *.yml) set -- registry serve "$@" ;;
  serve | garbage-collect | help | -*) set -- registry "$@" ;;
esac

exec "$@"
