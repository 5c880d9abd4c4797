import zmq

from agentzero.core import SocketManager

sockets = SocketManager(zmq, zmq.Context())
sockets.recv_safe("in", timout=1)
