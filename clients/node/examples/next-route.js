// A Next.js App Router route handler (app/api/projects/[id]/tasks/route.js) that publishes
// after its change (docs/clients.md §Node publisher). Node runtime only: the publisher speaks
// TCP, which the Edge runtime does not have.
//
// One publisher per server process: module scope survives between requests, and in development
// globalThis keeps it across hot reloads (each reload would otherwise open another connection).
import { createPublisher } from '@nudge/node';

export const runtime = 'nodejs';

const nudge = (globalThis.nudgePublisher ??= createPublisher({
  address: process.env.NUDGE_ADDRESS || '127.0.0.1:7400', // the API key comes from NUDGE_API_KEY
}));

async function saveTask(projectId, body) {
  return { id: crypto.randomUUID(), project: projectId, ...body }; // stands in for your database
}

export async function POST(request, { params }) {
  const { id } = await params;
  const task = await saveTask(id, await request.json());
  const seqs = await nudge.publish([`project:${id}`], { task: task.id }, {
    origin: request.headers.get('x-nudge-conn'), // the browser's nudge.connId: its hint says own
  });
  return Response.json({ task, seqs }); // seqs: {topic: seq}, or null when nudge is down
}
