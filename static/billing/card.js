// Collects a card with Stripe.js and confirms the SetupIntent; the server then checks with
// Stripe and saves it. On a decline or failed 3-D Secure nothing is saved: the page says why
// and reloads with a fresh SetupIntent, since Stripe may have cancelled the old one.
(function () {
  const form = document.getElementById("card-form");
  if (!form) return;
  const stripe = Stripe(form.dataset.publishableKey);
  const card = stripe.elements().create("card");
  card.mount("#card-element");
  const errorBox = document.getElementById("card-error");
  const button = document.getElementById("save-card");
  const csrf = form.querySelector("[name=csrfmiddlewaretoken]").value;

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    button.disabled = true;
    errorBox.textContent = "";
    let result;
    try {
      result = await stripe.confirmCardSetup(form.dataset.clientSecret, {payment_method: {card: card}});
    } catch (err) {
      result = {error: {message: String(err)}};
    }
    if (result.error) {
      const message = (result.error.message && !(result.error instanceof Error))
        ? result.error.message : "Check the card details and try again.";
      errorBox.textContent = message + " Your card was not saved.";
      const body = new URLSearchParams({message: message});
      await fetch(form.dataset.declinedUrl, {method: "POST", body: body, headers: {"X-CSRFToken": csrf}});
      button.textContent = "Try another card";
      button.disabled = false;
      button.onclick = (e) => { e.preventDefault(); window.location.reload(); };
      return;
    }
    document.getElementById("setup-intent").value = result.setupIntent.id;
    form.submit();
  });
})();
