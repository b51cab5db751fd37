#include "engine/forward_plan.h"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace sb {

void check_rows(const std::vector<Row> & rows, const RowLimits & lim) {
    for (const Row & r : rows) {
        if (r.check && !lim.has_candidates) throw std::invalid_argument("exit check without candidates");
        if (r.enter < 0 || r.exit > lim.n_layer || r.enter > r.exit) throw std::invalid_argument("bad layer range");
        if (r.pos < 0 || r.pos >= lim.n_ctx) throw std::out_of_range("position outside the context");
        if (r.enter == 0 && (r.token < 0 || r.token >= lim.n_vocab)) throw std::invalid_argument("token id out of range");
        if (r.enter > 0 && !lim.has_hidden_in) throw std::invalid_argument("hidden_in required for rows entering past layer 0");
        if (r.logits && r.exit != lim.n_layer) throw std::invalid_argument("logits need the full depth");
        // a row computing no layer has no state to take a head from
        if ((r.logits || r.check) && r.enter == r.exit) throw std::invalid_argument("a head needs at least one layer");
    }
}

namespace {

std::vector<int32_t> columns_of(const std::vector<int> & wanted, const std::vector<int> & order) {
    std::vector<int32_t> idx;
    for (int r : wanted) idx.push_back((int32_t) (std::find(order.begin(), order.end(), r) - order.begin()));
    return idx;
}

// which exit columns a head reads: column[r] is row r's column in all exit states side by side
HeadPlan plan_head(const std::vector<Row> & rows, const std::vector<int> & column, int n_columns, bool Row::*flag) {
    HeadPlan h;
    for (size_t r = 0; r < rows.size(); ++r)
        if (rows[r].*flag) h.columns.push_back(column[r]);
    h.whole = !h.columns.empty() && (int) h.columns.size() == n_columns && std::is_sorted(h.columns.begin(), h.columns.end());
    return h;
}

void plan_heads(const std::vector<Row> & rows, ForwardPlan & plan) {
    std::vector<int> column(rows.size(), -1);
    int n_columns = 0;
    for (const ExitPlan & e : plan.exits)
        for (int r : e.rows) column[r] = n_columns++;
    plan.logits = plan_head(rows, column, n_columns, &Row::logits);
    plan.check = plan_head(rows, column, n_columns, &Row::check);
}

} // namespace

ForwardPlan plan_forward(const std::vector<Row> & rows, const RowLimits & limits) {
    check_rows(rows, limits);
    ForwardPlan plan;
    plan.reads_hidden = std::any_of(rows.begin(), rows.end(), [](const Row & r) { return r.enter > 0; });
    // the layers spanned by rows that compute any (rows with enter == exit are no-ops)
    int l_first = limits.n_layer, l_last = 0;
    for (const Row & r : rows)
        if (r.enter < r.exit) l_first = std::min(l_first, (int) r.enter), l_last = std::max(l_last, (int) r.exit);
    // Walk the layers; the active rows change only where a row enters or exits.
    std::vector<int> order;  // active request rows, in column order
    for (int il = l_first; il <= l_last; ++il) {
        std::vector<int> leaving, staying, joining;
        for (int r : order) (rows[r].exit == il ? leaving : staying).push_back(r);
        if (!leaving.empty())
            plan.exits.push_back({ il, leaving, columns_of(leaving, order), staying.empty() ? std::vector<int32_t>()
                                                                                            : columns_of(staying, order),
                                   staying.empty() });
        if (il == l_last) break;
        for (int r = 0; r < (int) rows.size(); ++r)
            if (rows[r].enter == il && rows[r].exit > il) joining.push_back(r);
        if (leaving.empty() && joining.empty()) continue;
        if (staying.empty() && joining.empty()) throw std::invalid_argument("no row computes layer " + std::to_string(il));
        order = staying;
        order.insert(order.end(), joining.begin(), joining.end());
        if (!plan.segments.empty()) plan.segments.back().end = il;
        plan.segments.push_back({ il, il, joining, order });
    }
    if (!plan.segments.empty()) plan.segments.back().end = l_last;
    plan_heads(rows, plan);
    return plan;
}

} // namespace sb
