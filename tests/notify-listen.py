#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# notify-listen.py SOCKET LOG: stand in for systemd's notify socket.  Binds
# a Unix datagram socket at SOCKET and appends each datagram it receives
# to LOG as one line, its newline-separated fields joined by spaces
# ("READY=1 STATUS=serving"), until killed.
import socket
import sys

sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind(sys.argv[1])
with open(sys.argv[2], "a", buffering=1) as log:
    while True:
        msg = sock.recv(4096).decode("utf-8", "replace")
        log.write(" ".join(msg.strip().split("\n")) + "\n")
