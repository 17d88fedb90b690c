// Owns: turning a cluster file whose devices carry worker addresses (workers started by hand
// with `hetis worker`) and the planner's deployment plan into the layout and the address of each
// worker, in the order layoutAssignments expects. Must not: connect to anything.

import type { Cluster } from '../hardware/types.js';
import type { DeploymentPlan } from '../planner/types.js';
import type { ModelSpec } from '../model/spec.js';
import { HetisError } from '../util/errors.js';
import { kvBytesPerHeadPosition, type ClusterLayout } from './cluster-layout.js';

/**
 * The first replica of `plan` becomes the primary device (its stages and TP ranks); every
 * device with role 'attention' becomes an attention device with the plan's KV capacity. Other
 * replicas are not served (one engine drives one replica).
 */
export function layoutFromPlan(cluster: Cluster, plan: DeploymentPlan, spec: ModelSpec, blockSize: number): { layout: ClusterLayout; addresses: string[]; notes: string[] } {
  const byId = new Map(cluster.devices.map((d) => [d.id, d]));
  const planned = new Map(plan.devices.map((d) => [d.id, d]));
  const rep = plan.replicas[0];
  if (rep === undefined) throw new HetisError('bad_input', `the plan for '${cluster.name}' has no primaries`);
  const tp = rep.stages[0]!.devices.length;
  if (rep.stages.some((s) => s.devices.length !== tp)) throw new HetisError('unsupported', 'serving needs the same tensor-parallel width in every stage');
  const perPosition = kvBytesPerHeadPosition(spec, spec.nLayers);
  const primaryIds = rep.stages.flatMap((s) => s.devices);
  const attention = plan.devices.filter((d) => d.role === 'attention');
  const missing = [...primaryIds, ...attention.map((d) => d.id)].filter((id) => byId.get(id)?.address === undefined);
  if (missing.length > 0) {
    throw new HetisError('bad_input', `${cluster.name}: no worker address for ${missing.join(', ')} (give 'address' for every device: docs/clusters.md)`);
  }
  // The primaries' capacity is the tightest stage's (every head-token needs room on every stage).
  const primaryHeadTokens = Math.min(...rep.stages.map((st) => st.devices.reduce((a, id) => a + planned.get(id)!.kvCapacityHeadTokens, 0)));
  const layout: ClusterLayout = {
    primary: { id: 'primaries', tp, stages: rep.stages.length, kvCapacityBytes: primaryHeadTokens * perPosition, stageLayers: rep.stages.map((s) => s.layers) },
    attention: attention.map((d) => ({ id: d.id, kvCapacityBytes: d.kvCapacityHeadTokens * perPosition })),
    blockSize,
  };
  const notes = plan.replicas.length > 1 ? [`the plan has ${plan.replicas.length} replicas; serving the first (one engine per replica is not built yet)`] : [];
  // Cluster files name unix sockets by absolute path; the transport spells them unix:/path.
  const address = (id: string): string => { const a = byId.get(id)!.address!; return a.startsWith('/') ? `unix:${a}` : a; };
  return { layout, addresses: [...primaryIds, ...attention.map((d) => d.id)].map(address), notes };
}
