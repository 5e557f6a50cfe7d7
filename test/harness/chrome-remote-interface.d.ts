// The little of chrome-remote-interface the tests use (the package ships no types).
declare module 'chrome-remote-interface' {
  interface Options {
    host?: string;
    port?: number;
    target?: string | ((targets: unknown[]) => unknown);
    protocol?: unknown;
    local?: boolean;
  }
  interface Client {
    [domain: string]: any;
    on(event: string, listener: (params: any) => void): void;
    send(method: string, params?: unknown): Promise<any>;
    close(): Promise<void>;
  }
  function CDP(options: Options): Promise<Client>;
  export default CDP;
}
