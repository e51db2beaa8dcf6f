//! Graph algorithms for the wait-for graph, kept apart from the model.
//!
//! Everything is iterative with flat arrays: a dump can list 100,000 threads
//! in one wait chain, which a recursive walk would not survive.

use std::collections::{HashMap, HashSet};

use super::graph::{Edge, ThreadRef};

/// Adjacency lists in two flat arrays of 4-byte indexes (threads and edges
/// are counted in u32 everywhere in the graph): 12 bytes a thread and edge,
/// where usize took 24.
pub(super) struct Csr {
    start: Vec<u32>,
    /// (target node, edge index)
    targets: Vec<(u32, u32)>,
}

fn small(index: usize) -> u32 {
    u32::try_from(index).unwrap_or(u32::MAX)
}

impl Csr {
    pub(super) fn new(
        nodes: usize,
        edges: &[Edge],
        pick: impl Fn(&Edge) -> Option<(usize, usize)>,
    ) -> Csr {
        let mut count = vec![0u32; nodes + 1];
        for edge in edges {
            if let Some((from, to)) = pick(edge) {
                if from < nodes && to < nodes {
                    if let Some(slot) = count.get_mut(from + 1) {
                        *slot += 1;
                    }
                }
            }
        }
        for i in 1..count.len() {
            let previous = count.get(i - 1).copied().unwrap_or(0);
            if let Some(slot) = count.get_mut(i) {
                *slot += previous;
            }
        }
        let mut fill = count.clone();
        let mut targets = vec![(0, 0); count.last().copied().unwrap_or(0) as usize];
        for (index, edge) in edges.iter().enumerate() {
            if let Some((from, to)) = pick(edge) {
                if from < nodes && to < nodes {
                    if let Some(pos) = fill.get_mut(from) {
                        if let Some(slot) = targets.get_mut(*pos as usize) {
                            *slot = (small(to), small(index));
                        }
                        *pos += 1;
                    }
                }
            }
        }
        Csr {
            start: count,
            targets,
        }
    }

    pub(super) fn targets(&self, node: usize) -> impl Iterator<Item = (usize, usize)> + '_ {
        let from = self.start.get(node).copied().unwrap_or(0) as usize;
        let to = self.start.get(node + 1).map_or(from, |&to| to as usize);
        self.targets
            .get(from..to)
            .unwrap_or(&[])
            .iter()
            .map(|&(target, edge)| (target as usize, edge as usize))
    }

    fn target_at(&self, node: usize, offset: usize) -> Option<usize> {
        let from = self.start.get(node).copied()? as usize;
        let to = self.start.get(node + 1).copied()? as usize;
        let pos = from + offset;
        if pos < to {
            self.targets.get(pos).map(|&(target, _)| target as usize)
        } else {
            None
        }
    }
}

pub(super) struct Components {
    /// Component of each node.
    pub(super) of: Vec<u32>,
    /// (component, its threads), only for components that are cycles.
    pub(super) members: Vec<(usize, Vec<usize>)>,
}

const UNVISITED: u32 = u32::MAX;

/// Tarjan's strongly connected components with an explicit call stack.
pub(super) fn tarjan(graph: &Csr) -> Components {
    let nodes = graph.start.len().saturating_sub(1);
    let mut index = vec![UNVISITED; nodes];
    let mut low = vec![0u32; nodes];
    let mut on_stack = vec![false; nodes];
    let mut stack: Vec<u32> = Vec::new();
    // (node, next target offset): a wait chain as long as the dump.
    let mut calls: Vec<(u32, u32)> = Vec::new();
    let mut of = vec![UNVISITED; nodes];
    let mut members: Vec<(usize, Vec<usize>)> = Vec::new();
    let mut count = 0usize;
    let mut next_index = 0u32;

    for root in 0..nodes {
        if index.get(root).copied() != Some(UNVISITED) {
            continue;
        }
        visit(
            root,
            &mut next_index,
            &mut index,
            &mut low,
            &mut on_stack,
            &mut stack,
        );
        calls.push((small(root), 0));
        while let Some(&(node, offset)) = calls.last() {
            let node = node as usize;
            if let Some(target) = graph.target_at(node, offset as usize) {
                if let Some(call) = calls.last_mut() {
                    call.1 += 1;
                }
                match index.get(target).copied() {
                    Some(UNVISITED) => {
                        visit(
                            target,
                            &mut next_index,
                            &mut index,
                            &mut low,
                            &mut on_stack,
                            &mut stack,
                        );
                        calls.push((small(target), 0));
                    }
                    Some(target_index) if on_stack.get(target).copied().unwrap_or(false) => {
                        if let Some(l) = low.get_mut(node) {
                            *l = (*l).min(target_index);
                        }
                    }
                    _ => {}
                }
                continue;
            }
            calls.pop();
            let node_low = low.get(node).copied().unwrap_or(0);
            if Some(node_low) == index.get(node).copied() {
                let component = count;
                count += 1;
                let mut list = Vec::new();
                while let Some(member) = stack.pop() {
                    let member = member as usize;
                    if let Some(flag) = on_stack.get_mut(member) {
                        *flag = false;
                    }
                    if let Some(slot) = of.get_mut(member) {
                        *slot = small(component);
                    }
                    list.push(member);
                    if member == node {
                        break;
                    }
                }
                // Nearly every component is one thread without a self-wait:
                // keeping only possible cycles saves an allocation per thread.
                if list.len() > 1 || graph.targets(node).any(|(target, _)| target == node) {
                    members.push((component, list));
                }
            }
            if let Some(&(parent, _)) = calls.last() {
                if let Some(l) = low.get_mut(parent as usize) {
                    *l = (*l).min(node_low);
                }
            }
        }
    }
    Components { of, members }
}

fn visit(
    node: usize,
    next_index: &mut u32,
    index: &mut [u32],
    low: &mut [u32],
    on_stack: &mut [bool],
    stack: &mut Vec<u32>,
) {
    if let Some(slot) = index.get_mut(node) {
        *slot = *next_index;
    }
    if let Some(slot) = low.get_mut(node) {
        *slot = *next_index;
    }
    if let Some(flag) = on_stack.get_mut(node) {
        *flag = true;
    }
    *next_index += 1;
    stack.push(small(node));
}

/// Follows edges inside one component from its lowest thread until a thread
/// repeats: that loop is a real cycle to explain, as (thread, edge) steps.
pub(super) fn walk_cycle(
    graph: &Csr,
    of: &[u32],
    component: usize,
    members: &[usize],
) -> Vec<(usize, usize)> {
    let Some(&start) = members.iter().min() else {
        return Vec::new();
    };
    let mut seen: HashMap<usize, usize> = HashMap::new();
    let mut path: Vec<(usize, usize)> = Vec::new();
    let mut node = start;
    loop {
        if let Some(&pos) = seen.get(&node) {
            let mut cycle = path.split_off(pos);
            if let Some(lowest) = (0..cycle.len()).min_by_key(|&i| cycle.get(i).map(|s| s.0)) {
                cycle.rotate_left(lowest);
            }
            return cycle;
        }
        let next = graph
            .targets(node)
            .find(|&(target, _)| of.get(target).copied() == Some(small(component)));
        let Some((target, edge)) = next else {
            return path;
        };
        seen.insert(node, path.len());
        path.push((node, edge));
        node = target;
    }
}

/// Every thread that waits, directly or through others, on `members`, and
/// whether the list is complete: it stops when `budget` (threads listed,
/// shared by all deadlocks) runs out.
pub(super) fn stuck_behind(
    reverse: &Csr,
    of: &[u32],
    members: &[ThreadRef],
    budget: &mut usize,
) -> (Vec<usize>, bool) {
    let component = members.first().and_then(|m| of.get(m.index()).copied());
    let mut seen: HashSet<usize> = HashSet::new();
    let mut queue: Vec<usize> = members.iter().map(|m| m.index()).collect();
    let mut behind = Vec::new();
    let mut complete = true;
    'search: while let Some(node) = queue.pop() {
        for (waiter, _) in reverse.targets(node) {
            if of.get(waiter).copied() == component || !seen.insert(waiter) {
                continue;
            }
            if *budget == 0 {
                complete = false;
                break 'search;
            }
            *budget -= 1;
            behind.push(waiter);
            queue.push(waiter);
        }
    }
    behind.sort_unstable();
    (behind, complete)
}

/// Every thread not in a cycle that waits, directly or not, on one: a
/// single search from all cycles at once.
pub(super) fn behind_any(reverse: &Csr, in_cycle: &[bool]) -> Vec<usize> {
    let mut seen: Vec<bool> = in_cycle.to_vec();
    let mut queue: Vec<usize> = (0..in_cycle.len())
        .filter(|&t| in_cycle.get(t).copied().unwrap_or(false))
        .collect();
    let mut behind = Vec::new();
    while let Some(node) = queue.pop() {
        for (waiter, _) in reverse.targets(node) {
            match seen.get_mut(waiter) {
                Some(flag) if !*flag => *flag = true,
                _ => continue,
            }
            behind.push(waiter);
            queue.push(waiter);
        }
    }
    behind
}
