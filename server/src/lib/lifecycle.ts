/**
 * Where the process is in its life, for what answers differently while it stops: `/readyz` fails
 * during the drain so that a load balancer takes the instance out of rotation while it still
 * serves (server.ts starts the drain on SIGTERM).
 */
export class Lifecycle {
  #draining = false;

  get draining(): boolean {
    return this.#draining;
  }

  startDraining(): void {
    this.#draining = true;
  }
}
