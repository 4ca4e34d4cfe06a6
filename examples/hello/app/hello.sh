#!/bin/sh
echo "${GREETING:-hi} from $(pwd) as uid $(id -u)"
