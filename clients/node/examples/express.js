// An Express mutation route that publishes in two lines (docs/clients.md §Node publisher).
// The browser sends its nudge connection id (the JS client's `nudge.connId`) in a header, so its
// own hint says `own: true`; the answer hands it the seqs, so it knows when it has seen its change.
//
//   npm install express @nudge/node   (examples only: not dependencies of @nudge/node)
//   NUDGE_ADDRESS=127.0.0.1:7400 NUDGE_API_KEY=... node examples/express.js
import express from 'express';
import { createPublisher } from '@nudge/node';

const nudge = createPublisher({ address: process.env.NUDGE_ADDRESS || '127.0.0.1:7400' });
const app = express();
app.use(express.json());

const tasks = new Map(); // stands in for your database

app.put('/api/projects/:id/tasks/:task', async (req, res) => {
  const task = { ...req.body, id: req.params.task, project: req.params.id };
  tasks.set(`${task.project}/${task.id}`, task); // 1. the change, committed
  // 2. the hint: never throws for nudge being down; null then (and sent once it is back).
  const seqs = await nudge.publish([`project:${task.project}`], { task: task.id },
    { origin: req.get('x-nudge-conn') });
  res.json({ task, seqs });
});

const server = app.listen(3000, () => console.log('on http://127.0.0.1:3000'));
process.on('SIGTERM', () => server.close(() => nudge.close())); // flush what is in flight
