#!/bin/sh
echo "app on $(cat /opt/mono/VERSION)"
