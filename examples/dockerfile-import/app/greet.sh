#!/bin/sh
[ "$1" = --check ] && exit 0
echo "hello from greet @VERSION@"
