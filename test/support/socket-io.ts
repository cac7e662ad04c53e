import { io, type Socket as ClientSocket } from 'socket.io-client';

/**
 * socket.io clients for the tests: `open(url, options)` connects over WebSocket only, without
 * reconnection, and keeps the socket so that `closeAll()` disconnects every one at the end.
 */
export class SocketIoClients {
  private readonly sockets: ClientSocket[] = [];

  open(url: string, options: Parameters<typeof io>[1] = {}): ClientSocket {
    const socket = io(url, {
      transports: ['websocket'],
      reconnection: false,
      forceNew: true,
      ...options,
    });
    this.sockets.push(socket);
    return socket;
  }

  closeAll(): void {
    this.sockets.forEach((socket) => socket.disconnect());
  }
}
