#!/bin/sh
echo "$GREETING from imagesmith"
