#!/bin/sh
cat /srv/data/built-by
ls -ln /srv | awk 'NR > 1 { print $1, $3, $4, $9 }'
